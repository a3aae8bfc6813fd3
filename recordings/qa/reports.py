"""QA read models: the call search, the sampling run (risk signals from the CDR and recordings), trends.

Split from `recordings.qa.service` to keep modules small; like it, nothing here commits.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import Select, func, or_, select
from sqlalchemy.orm import Session, aliased

from core import audit
from core.errors import NotFound, PermissionDenied, ValidationFailed
from core.models import Role, User
from dialer.attempts.outcome import Outcome
from dialer.models import Call
from recordings.models import QaReview, Recording
from recordings.qa.sampling import (
    CallForSampling,
    SampledCall,
    SamplingPolicy,
    risk_reasons,
    select_for_review,
)
from recordings.qa.schemas import QaCallOut

Bucket = Literal["day", "week"]
MAX_TREND_BUCKETS = 400
# Most risk picks per agent when the caller does not say: the stock policy's 3 risk : 2 random.
DEFAULT_RISK_SHARE = 0.6


@dataclass(frozen=True, slots=True)
class CallFilters:
    period_from: datetime | None = None
    period_to: datetime | None = None
    agent_user_id: int | None = None
    campaign_id: int | None = None
    disposition_code: str | None = None
    outcome: str | None = None
    min_talk_s: float | None = None
    max_talk_s: float | None = None
    min_score_pct: float | None = None
    max_score_pct: float | None = None
    has_recording: bool | None = None


@dataclass(frozen=True, slots=True)
class TrendPoint:
    bucket_start: datetime
    review_count: int
    average_pct: float | None
    auto_fail_count: int


def _latest_id_of_call(model: type[Recording] | type[QaReview]) -> Any:
    # Correlated on the outer call row (an index lookup per listed call) rather than aggregating the
    # whole recording or review table on every search; aliased so it never binds to the outer join.
    inner: Any = aliased(model)
    return select(func.max(inner.id)).where(inner.call_id == Call.id).correlate(Call).scalar_subquery()


def search_calls(
    session: Session, filters: CallFilters, *, limit: int, offset: int
) -> tuple[list[QaCallOut], int]:
    """Calls newest first with their latest recording and latest review; score filters use that review."""
    counted = aliased(QaReview)
    review_count = (
        select(func.count(counted.id)).where(counted.call_id == Call.id).correlate(Call).scalar_subquery()
    )
    query: Select[Any] = (
        select(
            Call,
            Recording.id.label("recording_id"),
            Recording.status.label("recording_status"),
            Recording.duration_s.label("recording_duration_s"),
            QaReview.id.label("latest_review_id"),
            QaReview.total_pct.label("latest_score_pct"),
            QaReview.auto_failed.label("latest_auto_failed"),
            review_count.label("review_count"),
        )
        .select_from(Call)
        .outerjoin(Recording, Recording.id == _latest_id_of_call(Recording))
        .outerjoin(QaReview, QaReview.id == _latest_id_of_call(QaReview))
    )
    f = filters
    conditions = [
        (f.period_from, lambda v: Call.started_at >= v),
        (f.period_to, lambda v: Call.started_at < v),
        (f.agent_user_id, lambda v: Call.agent_user_id == v),
        (f.campaign_id, lambda v: Call.campaign_id == v),
        (f.disposition_code, lambda v: Call.disposition_code == v),
        (f.outcome, lambda v: Call.outcome == v),
        (f.min_talk_s, lambda v: Call.talk_s >= v),
        (f.max_talk_s, lambda v: Call.talk_s <= v),
        (f.min_score_pct, lambda v: QaReview.total_pct >= v),
        (f.max_score_pct, lambda v: QaReview.total_pct <= v),
        (f.has_recording, lambda v: Recording.id.is_not(None) if v else Recording.id.is_(None)),
    ]
    for value, condition in conditions:
        if value is not None:
            query = query.where(condition(value))
    total = session.scalar(select(func.count()).select_from(query.with_only_columns(Call.id).subquery()))
    rows = session.execute(
        query.order_by(Call.started_at.desc(), Call.id.desc()).limit(limit).offset(offset)
    ).all()
    return [_call_row(row) for row in rows], total or 0


def _call_row(row: Any) -> QaCallOut:
    call: Call = row[0]
    return QaCallOut(
        id=call.id,
        direction=call.direction,
        started_at=call.started_at,
        agent_user_id=call.agent_user_id,
        campaign_id=call.campaign_id,
        lead_id=call.lead_id,
        from_number=call.from_number,
        to_number=call.to_number,
        talk_s=call.talk_s,
        outcome=call.outcome,
        disposition_code=call.disposition_code,
        recording_id=row.recording_id,
        recording_status=row.recording_status,
        recording_duration_s=row.recording_duration_s,
        latest_review_id=row.latest_review_id,
        latest_score_pct=row.latest_score_pct,
        latest_auto_failed=row.latest_auto_failed,
        review_count=row.review_count or 0,
    )


# --- sampling ---------------------------------------------------------------------------------------


def _longest_silence(metrics: Any) -> float | None:
    value = metrics.get("longest_silence_s") if isinstance(metrics, dict) else None
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def calls_for_sampling(
    session: Session, *, period_from: datetime, period_to: datetime, campaign_id: int | None
) -> list[CallForSampling]:
    """Reviewable calls of the period (a conversation took place, or the call was abandoned)."""
    query = (
        select(
            Call.id,
            Call.agent_user_id,
            Call.started_at,
            Call.talk_s,
            Call.outcome,
            Call.disposition_code,
            Recording.metrics,
        )
        .select_from(Call)
        .outerjoin(Recording, Recording.id == _latest_id_of_call(Recording))
        .where(Call.started_at >= period_from, Call.started_at < period_to)
        # Busy, no-answer and unreachable dials have nothing to listen to; counting them as
        # "very short calls" would fill every risk quota with silence.
        .where(or_(Call.talk_s > 0, Call.outcome == Outcome.ABANDONED.value))
    )
    if campaign_id is not None:
        query = query.where(Call.campaign_id == campaign_id)
    return [
        CallForSampling(
            call_id=row.id,
            agent_id=row.agent_user_id,
            started_at=row.started_at,
            talk_s=row.talk_s,
            disposition=row.disposition_code or None,
            abandoned=row.outcome == Outcome.ABANDONED.value,
            longest_silence_s=_longest_silence(row.metrics),
        )
        for row in session.execute(query)
    ]


def sample_calls(
    calls: Sequence[CallForSampling],
    *,
    per_agent: int,
    risk_per_agent: int | None,
    seed: int | str,
    period_from: datetime,
    period_to: datetime,
    already_reviewed: frozenset[int],
    base_policy: SamplingPolicy | None = None,
) -> list[SampledCall]:
    """`per_agent` picks per agent: up to `risk_per_agent` risky calls, the rest a random audit (pure)."""
    # `select_for_review` fills a risk quota and a random quota separately, so an agent with few risky
    # calls would get fewer than `per_agent`; the unused risk quota goes to the random audit instead.
    # Each agent's random stream depends only on the seed and the agent id, so running the pure
    # function once per agent gives the same picks as one run with a per-agent policy.
    policy = base_policy or SamplingPolicy()
    risk_cap = min(
        per_agent, round(per_agent * DEFAULT_RISK_SHARE) if risk_per_agent is None else risk_per_agent
    )
    by_agent: dict[int | None, list[CallForSampling]] = {}
    for call in calls:
        if period_from <= call.started_at < period_to and call.call_id not in already_reviewed:
            by_agent.setdefault(call.agent_id, []).append(call)
    picked: list[SampledCall] = []
    for agent_id in sorted(by_agent, key=lambda a: (a is None, a or 0)):
        pool = by_agent[agent_id]
        risky = sum(1 for call in pool if risk_reasons(call, policy))
        risk_quota = min(risk_cap, risky)
        agent_policy = replace(policy, risk_per_agent=risk_quota, random_per_agent=per_agent - risk_quota)
        picked.extend(
            select_for_review(pool, agent_policy, seed=seed, period_start=period_from, period_end=period_to)
        )
    return picked


def run_sampling(
    session: Session,
    actor: audit.Actor,
    *,
    period_from: datetime,
    period_to: datetime,
    per_agent: int,
    risk_per_agent: int | None,
    seed: int | str,
    campaign_id: int | None = None,
    include_reviewed: bool = False,
) -> tuple[int, list[SampledCall]]:
    """Draw a reproducible review sample; nothing is stored except the audit row naming seed and period."""
    if period_to <= period_from:
        raise ValidationFailed("the period must end after it starts", details={"field": "to"})
    calls = calls_for_sampling(session, period_from=period_from, period_to=period_to, campaign_id=campaign_id)
    reviewed: frozenset[int] = frozenset()
    if not include_reviewed and calls:
        ids = [c.call_id for c in calls]
        reviewed = frozenset(
            session.scalars(select(QaReview.call_id).where(QaReview.call_id.in_(ids)).distinct()).all()
        )
    picked = sample_calls(
        calls,
        per_agent=per_agent,
        risk_per_agent=risk_per_agent,
        seed=seed,
        period_from=period_from,
        period_to=period_to,
        already_reviewed=reviewed,
    )
    audit.record(
        session,
        actor,
        action="qa.sampling.run",
        entity_type="qa_sampling",
        details={
            "from": period_from.isoformat(),
            "to": period_to.isoformat(),
            "seed": seed,
            "per_agent": per_agent,
            "risk_per_agent": risk_per_agent,
            "campaign_id": campaign_id,
            "selected": len(picked),
        },
    )
    return len(calls), picked


# --- trends -----------------------------------------------------------------------------------------


def zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValidationFailed(f"unknown time zone {name!r}", details={"field": "tz"}) from exc


def bucket_start(moment: datetime, bucket: Bucket, tz: ZoneInfo) -> date:
    """The local date a moment's day or week (Monday first) starts on."""
    local = moment.astimezone(tz).date()
    return local - timedelta(days=local.weekday()) if bucket == "week" else local


def bucket_points(
    samples: Iterable[tuple[datetime, float, bool]],
    *,
    period_from: datetime,
    period_to: datetime,
    bucket: Bucket,
    tz: ZoneInfo,
) -> list[TrendPoint]:
    """Average score, review count and auto-fails per bucket, empty buckets included (pure)."""
    step = timedelta(days=7 if bucket == "week" else 1)
    first = bucket_start(period_from, bucket, tz)
    last = bucket_start(period_to - timedelta(microseconds=1), bucket, tz)
    if last < first:
        return []
    if (last - first) // step + 1 > MAX_TREND_BUCKETS:
        raise ValidationFailed(
            f"at most {MAX_TREND_BUCKETS} buckets; choose a shorter period or weekly buckets",
            details={"field": "from"},
        )
    groups: dict[date, list[tuple[float, bool]]] = {}
    for at, pct, auto_failed in samples:
        groups.setdefault(bucket_start(at, bucket, tz), []).append((pct, auto_failed))
    points = []
    day = first
    while day <= last:
        group = groups.get(day, [])
        average = round(sum(p for p, _ in group) / len(group), 2) if group else None
        start = datetime(day.year, day.month, day.day, tzinfo=tz)  # local midnight, DST-safe
        points.append(TrendPoint(start, len(group), average, sum(1 for _, failed in group if failed)))
        day += step
    return points


def agent_trend(
    session: Session,
    *,
    role: Role,
    user_id: int | None,
    agent_user_id: int,
    period_from: datetime,
    period_to: datetime,
    bucket: Bucket,
    tz_name: str,
) -> list[TrendPoint]:
    """An agent's review scores per day or week of the *call* date; agents may see only their own."""
    if role is Role.AGENT and agent_user_id != user_id:
        raise PermissionDenied("agents may only see their own trend")
    if session.get(User, agent_user_id) is None:
        raise NotFound(f"user {agent_user_id} not found")
    if period_to <= period_from:
        raise ValidationFailed("the period must end after it starts", details={"field": "to"})
    tz = zone(tz_name)
    rows = session.execute(
        select(Call.started_at, QaReview.total_pct, QaReview.auto_failed)
        .join(Call, Call.id == QaReview.call_id)
        .where(
            QaReview.agent_user_id == agent_user_id,
            Call.started_at >= period_from,
            Call.started_at < period_to,
        )
    ).all()
    return bucket_points(
        ((r.started_at, r.total_pct, r.auto_failed) for r in rows),
        period_from=period_from,
        period_to=period_to,
        bucket=bucket,
        tz=tz,
    )
