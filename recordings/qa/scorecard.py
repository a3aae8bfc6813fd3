"""QA scorecards: sections of weighted criteria, auto-fail items, scoring and calibration (pure).

An answer per criterion is "met" (1), "partial" (0.5), "not_met" (0), "na" (left out of the
denominator) or a number in 0..1. A "not_met" on an auto-fail criterion (a compliance breach) sets the
review's total to 0 whatever else was scored, which is how most call-centre QA forms treat breaches.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from core.errors import ValidationFailed

ANSWER_VALUES: Mapping[str, float | None] = {"met": 1.0, "partial": 0.5, "not_met": 0.0, "na": None}
Answer = str | float


@dataclass(frozen=True, slots=True)
class Criterion:
    """One thing a reviewer checks."""

    id: str
    label: str
    guidance: str
    weight: int
    auto_fail: bool = False
    allow_na: bool = False


@dataclass(frozen=True, slots=True)
class Section:
    """A group of criteria scored together (opening, conversation...)."""

    id: str
    label: str
    criteria: tuple[Criterion, ...]


@dataclass(frozen=True, slots=True)
class Scorecard:
    """A versioned review form."""

    id: str
    version: int
    lang: str
    title: str
    sections: tuple[Section, ...]
    pass_pct: float = 80.0

    def criteria(self) -> tuple[Criterion, ...]:
        """All criteria in form order."""
        return tuple(c for s in self.sections for c in s.criteria)


@dataclass(frozen=True, slots=True)
class SectionScore:
    section_id: str
    pct: float | None  # None when every criterion of the section was n/a or unanswered
    earned: float
    possible: float


@dataclass(frozen=True, slots=True)
class ReviewScore:
    """The result of scoring one review; `criterion_scores` keeps the per-item values for calibration."""

    total_pct: float
    raw_pct: float  # before an auto-fail zeroes the total
    passed: bool
    section_scores: tuple[SectionScore, ...]
    auto_failed: bool
    auto_fail_items: tuple[str, ...]
    missing: tuple[str, ...]
    criterion_scores: tuple[tuple[str, float | None], ...]


@dataclass(frozen=True, slots=True)
class CalibrationDelta:
    """How far two reviewers of the same call are apart."""

    total_delta_pct: float  # b - a
    abs_total_delta_pct: float
    section_deltas: tuple[tuple[str, float | None], ...]
    disagreements: tuple[str, ...]  # criteria scored differently (n/a vs scored counts)
    auto_fail_mismatch: bool
    agreement_ratio: float  # share of criteria scored the same


def _answer_value(criterion: Criterion, answer: Answer) -> float | None:
    if isinstance(answer, bool):  # bool is an int; a checkbox "true" is not a score
        raise ValidationFailed(
            f"answer for {criterion.id} must be a label or a number", details={"id": criterion.id}
        )
    if isinstance(answer, int | float):
        if not 0.0 <= float(answer) <= 1.0:
            raise ValidationFailed(
                f"score for {criterion.id} must be within 0..1", details={"id": criterion.id}
            )
        return float(answer)
    if answer not in ANSWER_VALUES:
        raise ValidationFailed(
            f"unknown answer {answer!r} for {criterion.id}",
            details={"id": criterion.id, "allowed": list(ANSWER_VALUES)},
        )
    value = ANSWER_VALUES[answer]
    if value is None and not criterion.allow_na:
        raise ValidationFailed(f"{criterion.id} cannot be n/a", details={"id": criterion.id})
    return value


def score_review(card: Scorecard, answers: Mapping[str, Answer]) -> ReviewScore:
    """Score answers against a scorecard; unknown criterion ids or bad values raise ValidationFailed."""
    known = {c.id for c in card.criteria()}
    unknown = sorted(set(answers) - known)
    if unknown:
        raise ValidationFailed("answers name unknown criteria", details={"unknown": unknown})
    sections = []
    criterion_scores: list[tuple[str, float | None]] = []
    missing: list[str] = []
    auto_fail_items: list[str] = []
    earned_total = possible_total = 0.0
    for section in card.sections:
        earned = possible = 0.0
        for criterion in section.criteria:
            if criterion.id not in answers:
                missing.append(criterion.id)
                criterion_scores.append((criterion.id, None))
                continue
            value = _answer_value(criterion, answers[criterion.id])
            criterion_scores.append((criterion.id, value))
            if value is None:
                continue
            if criterion.auto_fail and value == 0.0:
                auto_fail_items.append(criterion.id)
            earned += value * criterion.weight
            possible += criterion.weight
        sections.append(SectionScore(section.id, _pct(earned, possible), round(earned, 3), possible))
        earned_total += earned
        possible_total += possible
    raw = _pct(earned_total, possible_total)
    raw_pct = raw if raw is not None else 0.0
    auto_failed = bool(auto_fail_items)
    total = 0.0 if auto_failed else raw_pct
    return ReviewScore(
        total_pct=total,
        raw_pct=raw_pct,
        passed=not auto_failed and not missing and total >= card.pass_pct,
        section_scores=tuple(sections),
        auto_failed=auto_failed,
        auto_fail_items=tuple(auto_fail_items),
        missing=tuple(missing),
        criterion_scores=tuple(criterion_scores),
    )


def calibration_delta(review_a: ReviewScore, review_b: ReviewScore) -> CalibrationDelta:
    """Compare two scored reviews of the same call on the same scorecard."""
    ids_a = [cid for cid, _ in review_a.criterion_scores]
    if ids_a != [cid for cid, _ in review_b.criterion_scores]:
        raise ValidationFailed("reviews were scored on different scorecards")
    b_scores = dict(review_b.criterion_scores)
    disagreements = tuple(cid for cid, value in review_a.criterion_scores if value != b_scores[cid])
    b_sections = {s.section_id: s.pct for s in review_b.section_scores}
    section_deltas: list[tuple[str, float | None]] = []
    for section in review_a.section_scores:
        b_pct = b_sections.get(section.section_id)
        delta_pct = None if section.pct is None or b_pct is None else round(b_pct - section.pct, 2)
        section_deltas.append((section.section_id, delta_pct))
    delta = round(review_b.total_pct - review_a.total_pct, 2)
    return CalibrationDelta(
        total_delta_pct=delta,
        abs_total_delta_pct=abs(delta),
        section_deltas=tuple(section_deltas),
        disagreements=disagreements,
        auto_fail_mismatch=review_a.auto_failed != review_b.auto_failed,
        agreement_ratio=round(1 - len(disagreements) / len(ids_a), 4) if ids_a else 1.0,
    )


def _pct(earned: float, possible: float) -> float | None:
    return round(100.0 * earned / possible, 2) if possible else None


# The default form follows the reviewer checklist in SEEDS.md §QA; the compliance items come from
# §"Rules from regulators" (a refusal must be honoured) and from recording-disclosure practice.
# (section id, criterion id, weight, auto_fail, allow_na, en label, en guidance, zh label, zh guidance)
_DEFAULT: tuple[tuple[str, str, int, bool, bool, str, str, str, str], ...] = (
    ("opening", "self_identification", 10, False, False,
     "Introduces self by full name and company",
     "Full name (not only a first name or job title) and the company, at the start of the call.",
     "自报全名和公司", "通话开始时说出完整姓名（不只是名字或职位）和公司名称。"),
    ("opening", "convenience_check", 5, False, False,
     "Asks whether now is a good time",
     "Checks the customer can talk before going on; offers a callback if not.",
     "确认对方是否方便接听", "继续之前先确认客户是否方便通话；不方便时主动约定回电时间。"),
    ("opening", "purpose_and_duration", 10, False, False,
     "States the purpose and how long the call will take",
     "Says why they are calling and gives an honest estimate of the time needed.",
     "说明来电目的和所需时长", "讲清来电原因，并如实说明大约需要多长时间。"),
    ("opening", "attention_within_30s", 10, False, False,
     "Earns attention within 30 seconds",
     "Something relevant to this customer is said in the first 30 seconds, not a scripted list.",
     "30 秒内引起客户兴趣", "前 30 秒内说出与该客户相关的内容，而不是照本宣科。"),
    ("conversation", "questions_not_monologue", 15, False, False,
     "Asks questions and listens more than talks",
     "Open questions; the customer does most of the talking (aim: agent listens about 70 % of the time).",
     "多提问、多倾听，不做独白", "使用开放式问题；让客户多说（目标：坐席约 70% 的时间在倾听）。"),
    ("conversation", "benefits_not_features", 10, False, True,
     "Presents benefits, not features",
     "Links the offer to what the customer said they need instead of listing product features.",
     "讲利益而非功能", "把产品与客户提到的需求联系起来，而不是罗列功能参数。"),
    ("conversation", "objection_handling", 10, False, True,
     "Handles objections without arguing",
     "Acknowledges the concern, clarifies it and answers it; never contradicts or pressures.",
     "处理异议不争辩", "先认同顾虑、再澄清、再回应；不反驳、不施压。"),
    ("close", "concrete_next_step", 15, False, False,
     "Closes on a concrete next step",
     "Ends with an agreed action, date or time (callback, visit, sending material), or a clear no.",
     "以明确的下一步结束", "以约定的具体行动、日期或时间结束（回电、拜访、发送资料），或明确的拒绝。"),
    ("delivery", "courtesy_and_tone", 10, False, False,
     "Courteous, with clear pronunciation, natural intonation, steady pace and volume",
     "Polite and patient throughout; speech easy to follow; no sighs, interruptions or talking over.",
     "礼貌、语气得体", "全程礼貌耐心；发音清楚、语调自然、语速和音量适中；不叹气、不打断、不抢话。"),
    ("compliance", "recording_disclosure", 5, True, False,
     "Discloses that the call is recorded and why",
     "Tells the customer that notes and the recording are kept and what they are used for.",
     "告知通话录音及用途", "告知客户通话会被记录和录音，以及用途。"),
    ("compliance", "refusal_honoured", 0, True, True,
     "Honours a refusal or do-not-call request",
     "If the customer declines or asks not to be called, the agent stops and records it.",
     "尊重客户拒绝或免打扰要求", "客户拒绝或要求不再来电时，坐席应停止推销并记录。未做到则本次评审不合格。"),
)  # fmt: skip

_SECTION_LABELS = {
    "en": {
        "opening": "Opening",
        "conversation": "Conversation",
        "close": "Close",
        "delivery": "Delivery",
        "compliance": "Compliance",
    },
    "zh-CN": {
        "opening": "开场",
        "conversation": "沟通",
        "close": "结束",
        "delivery": "表达",
        "compliance": "合规",
    },
}
_TITLES = {"en": "Outbound call review", "zh-CN": "外呼通话质检"}


def default_scorecard(lang: str = "zh-CN") -> Scorecard:
    """The stock outbound-call scorecard with labels in `lang` ("zh-CN" or "en")."""
    if lang not in _TITLES:
        raise ValidationFailed(f"no default scorecard in {lang!r}", details={"allowed": list(_TITLES)})
    sections: dict[str, list[Criterion]] = {}
    for sid, cid, weight, auto_fail, allow_na, en, en_help, zh, zh_help in _DEFAULT:
        label, guidance = (en, en_help) if lang == "en" else (zh, zh_help)
        sections.setdefault(sid, []).append(Criterion(cid, label, guidance, weight, auto_fail, allow_na))
    return Scorecard(
        id="outbound-default",
        version=1,
        lang=lang,
        title=_TITLES[lang],
        sections=tuple(Section(sid, _SECTION_LABELS[lang][sid], tuple(cs)) for sid, cs in sections.items()),
    )


def scorecard_to_dict(card: Scorecard) -> dict[str, Any]:
    """JSON-ready form of a scorecard (for `qa_scorecard.body`)."""
    return {
        "id": card.id,
        "version": card.version,
        "lang": card.lang,
        "title": card.title,
        "pass_pct": card.pass_pct,
        "sections": [
            {
                "id": s.id,
                "label": s.label,
                "criteria": [
                    {
                        "id": c.id,
                        "label": c.label,
                        "guidance": c.guidance,
                        "weight": c.weight,
                        "auto_fail": c.auto_fail,
                        "allow_na": c.allow_na,
                    }
                    for c in s.criteria
                ],
            }
            for s in card.sections
        ],
    }


def scorecard_from_dict(body: Mapping[str, Any]) -> Scorecard:
    """Rebuild a scorecard from `scorecard_to_dict` output; raise ValidationFailed on a malformed body."""
    try:
        sections = tuple(
            Section(
                str(s["id"]),
                str(s["label"]),
                tuple(
                    Criterion(
                        id=str(c["id"]),
                        label=str(c["label"]),
                        guidance=str(c.get("guidance", "")),
                        weight=int(c["weight"]),
                        auto_fail=bool(c.get("auto_fail", False)),
                        allow_na=bool(c.get("allow_na", False)),
                    )
                    for c in s["criteria"]
                ),
            )
            for s in body["sections"]
        )
        card = Scorecard(
            id=str(body["id"]),
            version=int(body["version"]),
            lang=str(body["lang"]),
            title=str(body["title"]),
            sections=sections,
            pass_pct=float(body.get("pass_pct", 80.0)),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise ValidationFailed(f"malformed scorecard: {exc}") from exc
    ids = [c.id for c in card.criteria()]
    if len(ids) != len(set(ids)) or any(c.weight < 0 for c in card.criteria()):
        raise ValidationFailed("scorecard criteria need unique ids and non-negative weights")
    return card
