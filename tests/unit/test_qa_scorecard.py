"""recordings.qa.scorecard: the default form, scoring, auto-fail, missing answers and calibration."""

from __future__ import annotations

import json

import pytest

from core.errors import ValidationFailed
from recordings.qa.scorecard import (
    Criterion,
    Scorecard,
    Section,
    calibration_delta,
    default_scorecard,
    score_review,
    scorecard_from_dict,
    scorecard_to_dict,
)

SEEDS_CHECKLIST = {
    "self_identification",
    "convenience_check",
    "purpose_and_duration",
    "attention_within_30s",
    "questions_not_monologue",
    "benefits_not_features",
    "objection_handling",
    "concrete_next_step",
    "courtesy_and_tone",
    "recording_disclosure",
}


def all_met(card: Scorecard) -> dict[str, str | float]:
    return {c.id: "met" for c in card.criteria()}


SMALL = Scorecard(
    id="t",
    version=1,
    lang="en",
    title="t",
    sections=(
        Section("a", "A", (Criterion("a1", "a1", "", 30), Criterion("a2", "a2", "", 10, allow_na=True))),
        Section(
            "b", "B", (Criterion("b1", "b1", "", 60), Criterion("legal", "legal", "", 0, auto_fail=True))
        ),
    ),
)


@pytest.mark.parametrize("lang", ["zh-CN", "en"])
def test_default_scorecard_covers_the_seed_checklist(lang: str) -> None:
    card = default_scorecard(lang)
    ids = {c.id for c in card.criteria()}
    assert ids >= SEEDS_CHECKLIST
    assert sum(c.weight for c in card.criteria()) == 100
    assert all(c.label and c.guidance for c in card.criteria())
    assert {c.id for c in card.criteria() if c.auto_fail} == {"recording_disclosure", "refusal_honoured"}


def test_default_scorecard_languages_share_structure_but_not_text() -> None:
    zh, en = default_scorecard("zh-CN"), default_scorecard("en")
    assert [c.id for c in zh.criteria()] == [c.id for c in en.criteria()]
    assert [c.weight for c in zh.criteria()] == [c.weight for c in en.criteria()]
    assert zh.criteria()[0].label == "自报全名和公司"
    assert en.criteria()[0].label.startswith("Introduces self by full name")


def test_unknown_language_is_refused() -> None:
    with pytest.raises(ValidationFailed):
        default_scorecard("fr")


def test_everything_met_scores_100_and_passes() -> None:
    card = default_scorecard("en")
    score = score_review(card, all_met(card))
    assert (score.total_pct, score.passed, score.auto_failed, score.missing) == (100.0, True, False, ())
    assert all(s.pct == 100.0 for s in score.section_scores if s.possible)


def test_weights_partial_and_na() -> None:
    score = score_review(SMALL, {"a1": "partial", "a2": "na", "b1": 1.0, "legal": "met"})
    # a: 15 of 30 (a2 left out), b: 60 of 60 -> 75 of 90.
    assert score.total_pct == pytest.approx(83.33)
    assert [(s.section_id, s.pct) for s in score.section_scores] == [("a", 50.0), ("b", 100.0)]
    assert score.passed


def test_auto_fail_zeroes_the_total_but_keeps_the_raw_score() -> None:
    card = default_scorecard("zh-CN")
    answers = all_met(card) | {"recording_disclosure": "not_met"}
    score = score_review(card, answers)
    assert score.auto_failed and score.auto_fail_items == ("recording_disclosure",)
    assert score.total_pct == 0.0
    assert score.raw_pct == 95.0
    assert not score.passed


def test_zero_weight_auto_fail_item_still_fails() -> None:
    score = score_review(SMALL, {"a1": "met", "a2": "met", "b1": "met", "legal": "not_met"})
    assert score.raw_pct == 100.0 and score.auto_failed and score.total_pct == 0.0


def test_partial_on_auto_fail_item_is_not_a_fail() -> None:
    score = score_review(SMALL, {"a1": "met", "a2": "met", "b1": "met", "legal": "partial"})
    assert not score.auto_failed


def test_missing_answers_are_listed_and_block_a_pass() -> None:
    score = score_review(SMALL, {"a1": "met", "b1": "met"})
    assert score.missing == ("a2", "legal")
    assert score.total_pct == 100.0
    assert not score.passed


def test_empty_answers_score_zero() -> None:
    score = score_review(SMALL, {})
    assert score.total_pct == 0.0 and len(score.missing) == 4
    assert all(s.pct is None for s in score.section_scores)


@pytest.mark.parametrize(
    "answers",
    [
        {"nope": "met"},
        {"a1": "maybe"},
        {"a1": 1.5},
        {"a1": -0.1},
        {"a1": True},
        {"a1": "na"},  # a1 does not allow n/a
    ],
)
def test_bad_answers_are_validation_errors(answers: dict[str, str | float]) -> None:
    with pytest.raises(ValidationFailed):
        score_review(SMALL, answers)


def test_calibration_delta() -> None:
    a = score_review(SMALL, {"a1": "met", "a2": "met", "b1": "met", "legal": "met"})
    b = score_review(SMALL, {"a1": "partial", "a2": "na", "b1": "met", "legal": "met"})
    delta = calibration_delta(a, b)
    assert delta.total_delta_pct == pytest.approx(83.33 - 100.0)
    assert delta.abs_total_delta_pct == pytest.approx(16.67)
    assert delta.disagreements == ("a1", "a2")
    assert delta.agreement_ratio == 0.5
    assert dict(delta.section_deltas) == {"a": -50.0, "b": 0.0}
    assert not delta.auto_fail_mismatch


def test_calibration_flags_auto_fail_mismatch_and_identical_reviews() -> None:
    ok = score_review(SMALL, {"a1": "met", "a2": "met", "b1": "met", "legal": "met"})
    failed = score_review(SMALL, {"a1": "met", "a2": "met", "b1": "met", "legal": "not_met"})
    assert calibration_delta(ok, failed).auto_fail_mismatch
    same = calibration_delta(ok, ok)
    assert (same.total_delta_pct, same.disagreements, same.agreement_ratio) == (0.0, (), 1.0)


def test_calibration_refuses_different_scorecards() -> None:
    card = default_scorecard("en")
    with pytest.raises(ValidationFailed):
        calibration_delta(score_review(SMALL, {}), score_review(card, {}))


def test_scorecard_round_trips_through_json() -> None:
    card = default_scorecard("zh-CN")
    body = json.loads(json.dumps(scorecard_to_dict(card), ensure_ascii=False))
    assert scorecard_from_dict(body) == card


@pytest.mark.parametrize(
    "mutate",
    [
        lambda b: b.pop("sections"),
        lambda b: b["sections"][0]["criteria"][0].update(weight="heavy"),
        lambda b: b["sections"][0]["criteria"][0].update(weight=-1),
        lambda b: b["sections"][1]["criteria"].append(dict(b["sections"][0]["criteria"][0])),
    ],
)
def test_malformed_scorecard_body_is_refused(mutate: object) -> None:
    body = scorecard_to_dict(default_scorecard("en"))
    mutate(body)  # type: ignore[operator]
    with pytest.raises(ValidationFailed):
        scorecard_from_dict(body)
