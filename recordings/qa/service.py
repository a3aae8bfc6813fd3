"""QA use cases: scorecard versions, reviews, timestamped comments, acknowledgement and calibration.

Services add to the session and never commit; the request's unit of work does. Scoring, parsing and
calibration arithmetic are the pure functions of `recordings.qa.scorecard`; this module loads rows,
checks who may do what and writes the audit trail. Call search, sampling and trends are in
`recordings.qa.reports`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from itertools import combinations
from typing import Any

from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from core import audit
from core.errors import Conflict, NotFound, PermissionDenied, ValidationFailed
from core.models import Role
from dialer.models import Call
from recordings.access import may_listen
from recordings.models import QaReview, QaScorecard, Recording
from recordings.qa.scorecard import (
    Answer,
    CalibrationDelta,
    ReviewScore,
    Scorecard,
    calibration_delta,
    default_scorecard,
    score_review,
    scorecard_from_dict,
    scorecard_to_dict,
)

# Serialises scorecard version numbering (there is no unique index on name/version to lean on).
_SCORECARD_LOCK_KEY = 0x0A5C0DE


@dataclass(frozen=True, slots=True)
class CommentDraft:
    at_s: float
    text: str


@dataclass(frozen=True, slots=True)
class CalibrationPair:
    review_a: QaReview
    review_b: QaReview
    score_a: ReviewScore
    score_b: ReviewScore
    delta: CalibrationDelta


@dataclass(frozen=True, slots=True)
class Calibration:
    call_id: int
    reviewer_count: int
    pairs: tuple[CalibrationPair, ...]
    skipped_review_ids: tuple[int, ...]


# --- scorecards -------------------------------------------------------------------------------------


def _lock_scorecards(session: Session) -> None:
    # Two concurrent first requests would otherwise both seed the default, or both take version n+1.
    # SQLite serialises writers itself, so only PostgreSQL needs the lock.
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _SCORECARD_LOCK_KEY})


def _versions(session: Session, name: str, lang: str) -> list[QaScorecard]:
    rows = session.scalars(
        select(QaScorecard).where(QaScorecard.name == name).order_by(QaScorecard.version)
    ).all()
    # The language lives in the JSON body (no column for it); a name has few versions, so filter here.
    return [row for row in rows if row.body.get("lang") == lang]


def ensure_default_scorecard(session: Session, lang: str, *, actor: audit.Actor | None = None) -> QaScorecard:
    """The active stock scorecard in `lang`, created on first use from `default_scorecard`."""
    card = default_scorecard(lang)  # raises ValidationFailed for a language without a stock form
    rows = _versions(session, card.id, lang)
    if not rows:
        _lock_scorecards(session)
        rows = _versions(session, card.id, lang)
    if rows:
        active = [row for row in rows if row.is_active]
        return active[-1] if active else rows[-1]
    row = QaScorecard(name=card.id, version=card.version, body=scorecard_to_dict(card), is_active=True)
    session.add(row)
    session.flush()
    audit.record(
        session,
        actor or audit.Actor(user_id=None, label="system:qa-default-scorecard"),
        action="qa.scorecard.seed",
        entity_type="qa_scorecard",
        entity_id=row.id,
        details={"name": card.id, "lang": lang, "version": card.version},
    )
    return row


def create_scorecard(session: Session, actor: audit.Actor, fields: Mapping[str, Any]) -> QaScorecard:
    """Store a scorecard; an existing name in the same language gets its next version, the old one retires."""
    name, lang = str(fields.get("name", "")), str(fields.get("lang", ""))
    _lock_scorecards(session)
    previous = _versions(session, name, lang)
    version = previous[-1].version + 1 if previous else 1
    body = {
        "id": name,
        "version": version,
        "lang": lang,
        "title": fields.get("title"),
        "pass_pct": fields.get("pass_pct", 80.0),
        "sections": fields.get("sections"),
    }
    card = scorecard_from_dict(body)  # the pure parser is the one validator of a form's shape
    if not any(c.weight > 0 for c in card.criteria()):
        raise ValidationFailed("at least one criterion needs a positive weight")
    retired = []
    for row in previous:
        if row.is_active:
            row.is_active = False
            retired.append(row.id)
    row = QaScorecard(name=name, version=version, body=scorecard_to_dict(card), is_active=True)
    session.add(row)
    session.flush()
    audit.record(
        session,
        actor,
        action="qa.scorecard.create",
        entity_type="qa_scorecard",
        entity_id=row.id,
        details={"name": name, "lang": lang, "version": version, "retired_ids": retired},
    )
    return row


def list_active_scorecards(session: Session, *, lang: str | None = None) -> list[QaScorecard]:
    rows = session.scalars(
        select(QaScorecard).where(QaScorecard.is_active.is_(True)).order_by(QaScorecard.name, QaScorecard.id)
    ).all()
    return [row for row in rows if lang is None or row.body.get("lang") == lang]


def get_scorecard(session: Session, scorecard_id: int) -> QaScorecard:
    row = session.get(QaScorecard, scorecard_id)
    if row is None:
        raise NotFound(f"scorecard {scorecard_id} not found")
    return row


def card_of(row: QaScorecard) -> Scorecard:
    """The pure scorecard stored in a row."""
    return scorecard_from_dict(row.body)


# --- reviews ----------------------------------------------------------------------------------------


def get_call(session: Session, call_id: int) -> Call:
    call = session.get(Call, call_id)
    if call is None:
        raise NotFound(f"call {call_id} not found")
    return call


def recording_duration_s(session: Session, call_id: int) -> float | None:
    """Length of the call's processed recording, or None while it is unknown (pending, none, corrupt)."""
    duration = session.scalar(
        select(func.max(Recording.duration_s)).where(
            Recording.call_id == call_id, Recording.status == "processed", Recording.duration_s > 0
        )
    )
    return float(duration) if duration is not None else None


def _comment(
    draft: CommentDraft, *, author_user_id: int | None, now: datetime, duration: float | None
) -> Any:
    if draft.at_s < 0 or (duration is not None and draft.at_s > duration):
        raise ValidationFailed(
            "comment position is outside the recording",
            details={"field": "at_s", "at_s": draft.at_s, "duration_s": duration},
        )
    text_ = draft.text.strip()
    if not text_:
        raise ValidationFailed("comment text is empty", details={"field": "text"})
    return {
        "at_s": draft.at_s,
        "text": text_,
        "author_user_id": author_user_id,
        "created_at": now.isoformat(),
    }


def score_of(session: Session, review: QaReview) -> ReviewScore:
    """Recompute a stored review's breakdown (deterministic: same scorecard version, same answers)."""
    return score_review(card_of(get_scorecard(session, review.scorecard_id)), review.answers)


def create_review(
    session: Session,
    actor: audit.Actor,
    *,
    call_id: int,
    scorecard_id: int,
    answers: Mapping[str, Answer],
    summary: str,
    comments: Sequence[CommentDraft],
    now: datetime,
) -> tuple[QaReview, ReviewScore]:
    """Score a call on an active scorecard; every criterion must be answered ("na" where allowed)."""
    if actor.user_id is None:
        raise PermissionDenied("reviews are signed by a user; API keys cannot review calls")
    call = get_call(session, call_id)
    if call.agent_user_id is not None and call.agent_user_id == actor.user_id:
        raise PermissionDenied("reviewers may not score their own calls")
    row = get_scorecard(session, scorecard_id)
    if not row.is_active:
        raise Conflict(
            f"scorecard {scorecard_id} was replaced by a newer version",
            details={"scorecard_id": scorecard_id},
        )
    score = score_review(card_of(row), answers)
    if score.missing:
        raise ValidationFailed(
            "every criterion needs an answer (use 'na' where allowed)",
            details={"missing": list(score.missing)},
        )
    duration = recording_duration_s(session, call.id)
    review = QaReview(
        call_id=call.id,
        scorecard_id=row.id,
        reviewer_user_id=actor.user_id,
        agent_user_id=call.agent_user_id,
        answers=dict(answers),
        total_pct=score.total_pct,
        auto_failed=score.auto_failed,
        comments=[_comment(c, author_user_id=actor.user_id, now=now, duration=duration) for c in comments],
        summary=summary,
        created_at=now,
    )
    session.add(review)
    session.flush()
    audit.record(
        session,
        actor,
        action="qa.review.create",
        entity_type="qa_review",
        entity_id=review.id,
        details={
            "call_id": call.id,
            "scorecard_id": row.id,
            "agent_user_id": call.agent_user_id,
            "total_pct": score.total_pct,
            "auto_failed": score.auto_failed,
        },
    )
    return review, score


def get_review(session: Session, review_id: int, *, role: Role, user_id: int | None) -> QaReview:
    """A review the caller may read: agents only reviews of their own calls (the recording rule)."""
    review = session.get(QaReview, review_id)
    if review is None:
        raise NotFound(f"review {review_id} not found")
    if not may_listen(role=role, user_id=user_id, call_agent_id=review.agent_user_id):
        raise PermissionDenied("agents may only read reviews of their own calls")
    return review


def list_reviews(
    session: Session,
    *,
    role: Role,
    user_id: int | None,
    agent_user_id: int | None,
    call_id: int | None,
    period_from: datetime | None,
    period_to: datetime | None,
    limit: int,
    offset: int,
) -> tuple[list[QaReview], int]:
    """Reviews newest first, by review time in [from, to); agents see only their own."""
    if role is Role.AGENT:
        if user_id is None or (agent_user_id is not None and agent_user_id != user_id):
            raise PermissionDenied("agents may only list reviews of their own calls")
        agent_user_id = user_id
    query = select(QaReview)
    if agent_user_id is not None:
        query = query.where(QaReview.agent_user_id == agent_user_id)
    if call_id is not None:
        query = query.where(QaReview.call_id == call_id)
    if period_from is not None:
        query = query.where(QaReview.created_at >= period_from)
    if period_to is not None:
        query = query.where(QaReview.created_at < period_to)
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = session.scalars(
        query.order_by(QaReview.created_at.desc(), QaReview.id.desc()).limit(limit).offset(offset)
    ).all()
    return list(rows), total


def add_comment(
    session: Session, actor: audit.Actor, review_id: int, draft: CommentDraft, *, now: datetime
) -> QaReview:
    """Append a timestamped comment; its position must fall within the recording when its length is known."""
    review = session.get(QaReview, review_id)
    if review is None:
        raise NotFound(f"review {review_id} not found")
    comment = _comment(
        draft,
        author_user_id=actor.user_id,
        now=now,
        duration=recording_duration_s(session, review.call_id),
    )
    # A new list, not an in-place append: a plain JSON column does not notice mutation.
    review.comments = [*review.comments, comment]
    audit.record(
        session,
        actor,
        action="qa.review.comment",
        entity_type="qa_review",
        entity_id=review.id,
        details={"at_s": comment["at_s"], "index": len(review.comments) - 1},
    )
    return review


def acknowledge_review(session: Session, actor: audit.Actor, review_id: int, *, now: datetime) -> QaReview:
    """The reviewed agent confirms they have seen the review; repeating it changes nothing."""
    review = session.get(QaReview, review_id)
    if review is None:
        raise NotFound(f"review {review_id} not found")
    if actor.user_id is None or review.agent_user_id != actor.user_id:
        raise PermissionDenied("only the reviewed agent can acknowledge a review")
    if review.acknowledged_at is None:
        review.acknowledged_at = now
        audit.record(
            session,
            actor,
            action="qa.review.acknowledge",
            entity_type="qa_review",
            entity_id=review.id,
            details={"call_id": review.call_id},
        )
    return review


# --- calibration ------------------------------------------------------------------------------------


def criterion_deltas(
    score_a: ReviewScore, score_b: ReviewScore
) -> list[tuple[str, float | None, float | None, float | None]]:
    """Per criterion: (id, a, b, b - a); the difference is None when either side is n/a."""
    b_scores = dict(score_b.criterion_scores)
    rows: list[tuple[str, float | None, float | None, float | None]] = []
    for cid, a in score_a.criterion_scores:
        b = b_scores.get(cid)
        rows.append((cid, a, b, None if a is None or b is None else round(b - a, 4)))
    return rows


def calibrate(session: Session, call_id: int) -> Calibration:
    """Compare every pair of reviewers of one call (each reviewer's latest review, same scorecard version)."""
    get_call(session, call_id)
    reviews = session.scalars(select(QaReview).where(QaReview.call_id == call_id).order_by(QaReview.id)).all()
    latest: dict[int, QaReview] = {}
    for review in reviews:
        latest[review.reviewer_user_id] = review  # ordered by id: the last one wins
    by_card: dict[int, list[QaReview]] = {}
    for review in sorted(latest.values(), key=lambda r: r.id):
        by_card.setdefault(review.scorecard_id, []).append(review)
    pairs: list[CalibrationPair] = []
    skipped: list[int] = []
    for scorecard_id, group in by_card.items():
        if len(group) < 2:
            # Alone on its scorecard version while others used another one: nothing comparable.
            if len(by_card) > 1:
                skipped.extend(r.id for r in group)
            continue
        card = card_of(get_scorecard(session, scorecard_id))
        scores = {r.id: score_review(card, r.answers) for r in group}
        for a, b in combinations(group, 2):
            delta = calibration_delta(scores[a.id], scores[b.id])
            pairs.append(CalibrationPair(a, b, scores[a.id], scores[b.id], delta))
    return Calibration(
        call_id=call_id, reviewer_count=len(latest), pairs=tuple(pairs), skipped_review_ids=tuple(skipped)
    )
