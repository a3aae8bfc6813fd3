"""HTTP in: QA call search, scorecards, reviews, comments, acknowledgement, calibration, sampling, trends."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, Query, status
from pydantic import AwareDatetime

from api.deps import (
    AnyUserDep,
    ClockDep,
    PaginationDep,
    Principal,
    QaDep,
    RoleGuard,
    SessionDep,
    SettingsDep,
)
from api.schemas import Page
from core.models import Role
from recordings.models import QaReview
from recordings.qa import reports, service
from recordings.qa.schemas import (
    CalibrationOut,
    CalibrationPairOut,
    CommentIn,
    CriterionDeltaOut,
    QaCallOut,
    ReviewDetailOut,
    ReviewIn,
    ReviewOut,
    SampledCallOut,
    SamplingRunIn,
    SamplingRunOut,
    ScorecardIn,
    ScorecardLang,
    ScorecardOut,
    SectionScoreOut,
    TrendBucket,
    TrendOut,
    TrendPointOut,
)
from recordings.qa.scorecard import ReviewScore

router = APIRouter(prefix="/qa", tags=["qa"])

# Forms are QA's instrument; supervisors use them but do not redefine them.
scorecard_editors = RoleGuard(Role.QA, Role.ADMIN)
ScorecardEditorDep = Annotated[Principal, Depends(scorecard_editors)]
FromQuery = Annotated[AwareDatetime | None, Query(alias="from", description="inclusive")]
ToQuery = Annotated[AwareDatetime | None, Query(alias="to", description="exclusive")]
# The centre's local day (default region CN) decides where a day or week bucket starts.
DEFAULT_TREND_TZ = "Asia/Shanghai"


@router.get("/calls", response_model=Page[QaCallOut])
def search_calls(
    _: QaDep,
    session: SessionDep,
    page: PaginationDep,
    period_from: FromQuery = None,
    period_to: ToQuery = None,
    agent_user_id: int | None = None,
    campaign_id: int | None = None,
    disposition_code: str | None = None,
    outcome: str | None = None,
    min_talk_s: Annotated[float | None, Query(ge=0)] = None,
    max_talk_s: Annotated[float | None, Query(ge=0)] = None,
    min_score_pct: Annotated[float | None, Query(ge=0, le=100)] = None,
    max_score_pct: Annotated[float | None, Query(ge=0, le=100)] = None,
    has_recording: bool | None = None,
) -> Page[QaCallOut]:
    """Find calls to review, newest first; score filters apply to each call's latest review."""
    filters = reports.CallFilters(
        period_from=period_from,
        period_to=period_to,
        agent_user_id=agent_user_id,
        campaign_id=campaign_id,
        disposition_code=disposition_code,
        outcome=outcome,
        min_talk_s=min_talk_s,
        max_talk_s=max_talk_s,
        min_score_pct=min_score_pct,
        max_score_pct=max_score_pct,
        has_recording=has_recording,
    )
    rows, total = reports.search_calls(session, filters, limit=page.limit, offset=page.offset)
    return Page(
        items=rows,
        total=total,
        limit=page.limit,
        offset=page.offset,
    )


# --- scorecards -------------------------------------------------------------------------------------


@router.get("/scorecards", response_model=list[ScorecardOut])
def list_scorecards(
    principal: AnyUserDep, session: SessionDep, settings: SettingsDep, lang: ScorecardLang | None = None
) -> list[ScorecardOut]:
    """Active scorecards (all languages unless `lang`); the stock form is created on first use."""
    service.ensure_default_scorecard(session, lang or settings.default_language, actor=principal.actor)
    return [ScorecardOut.model_validate(r) for r in service.list_active_scorecards(session, lang=lang)]


@router.post("/scorecards", response_model=ScorecardOut, status_code=status.HTTP_201_CREATED)
def create_scorecard(body: ScorecardIn, principal: ScorecardEditorDep, session: SessionDep) -> ScorecardOut:
    return ScorecardOut.model_validate(service.create_scorecard(session, principal.actor, body.model_dump()))


@router.get("/scorecards/{scorecard_id}", response_model=ScorecardOut)
def get_scorecard(scorecard_id: int, _: AnyUserDep, session: SessionDep) -> ScorecardOut:
    return ScorecardOut.model_validate(service.get_scorecard(session, scorecard_id))


# --- reviews ----------------------------------------------------------------------------------------


def _detail(review: QaReview, score: ReviewScore) -> ReviewDetailOut:
    return ReviewDetailOut(
        **ReviewOut.model_validate(review).model_dump(),
        raw_pct=score.raw_pct,
        passed=score.passed,
        section_scores=[
            SectionScoreOut(section_id=s.section_id, pct=s.pct, earned=s.earned, possible=s.possible)
            for s in score.section_scores
        ],
        auto_fail_items=list(score.auto_fail_items),
    )


@router.post("/reviews", response_model=ReviewDetailOut, status_code=status.HTTP_201_CREATED)
def create_review(body: ReviewIn, principal: QaDep, session: SessionDep, clock: ClockDep) -> ReviewDetailOut:
    review, score = service.create_review(
        session,
        principal.actor,
        call_id=body.call_id,
        scorecard_id=body.scorecard_id,
        answers=body.answers,
        summary=body.summary,
        comments=[service.CommentDraft(c.at_s, c.text) for c in body.comments],
        now=clock.now(),
    )
    return _detail(review, score)


@router.get("/reviews", response_model=Page[ReviewOut])
def list_reviews(
    principal: AnyUserDep,
    session: SessionDep,
    page: PaginationDep,
    agent_user_id: int | None = None,
    call_id: int | None = None,
    period_from: FromQuery = None,
    period_to: ToQuery = None,
) -> Page[ReviewOut]:
    """Reviews newest first by review time; agents get only reviews of their own calls."""
    rows, total = service.list_reviews(
        session,
        role=principal.role,
        user_id=principal.user_id,
        agent_user_id=agent_user_id,
        call_id=call_id,
        period_from=period_from,
        period_to=period_to,
        limit=page.limit,
        offset=page.offset,
    )
    return Page(
        items=[ReviewOut.model_validate(r) for r in rows], total=total, limit=page.limit, offset=page.offset
    )


@router.get("/reviews/{review_id}", response_model=ReviewDetailOut)
def get_review(review_id: int, principal: AnyUserDep, session: SessionDep) -> ReviewDetailOut:
    review = service.get_review(session, review_id, role=principal.role, user_id=principal.user_id)
    return _detail(review, service.score_of(session, review))


@router.post("/reviews/{review_id}/comments", response_model=ReviewOut, status_code=status.HTTP_201_CREATED)
def add_comment(
    review_id: int, body: CommentIn, principal: QaDep, session: SessionDep, clock: ClockDep
) -> ReviewOut:
    """Add a comment pinned to a position in the recording (seconds from the start)."""
    draft = service.CommentDraft(body.at_s, body.text)
    return ReviewOut.model_validate(
        service.add_comment(session, principal.actor, review_id, draft, now=clock.now())
    )


@router.post("/reviews/{review_id}/acknowledge", response_model=ReviewOut)
def acknowledge_review(
    review_id: int, principal: AnyUserDep, session: SessionDep, clock: ClockDep
) -> ReviewOut:
    """The reviewed agent confirms having read the review (idempotent)."""
    return ReviewOut.model_validate(
        service.acknowledge_review(session, principal.actor, review_id, now=clock.now())
    )


# --- calibration, sampling, trends ------------------------------------------------------------------


@router.get("/calibration", response_model=CalibrationOut)
def calibration(call_id: int, _: QaDep, session: SessionDep) -> CalibrationOut:
    """How far the reviewers of one call are apart, pair by pair (b - a, a the earlier review)."""
    result = service.calibrate(session, call_id)
    pairs = []
    for pair in result.pairs:
        pairs.append(
            CalibrationPairOut(
                review_a_id=pair.review_a.id,
                review_b_id=pair.review_b.id,
                reviewer_a_user_id=pair.review_a.reviewer_user_id,
                reviewer_b_user_id=pair.review_b.reviewer_user_id,
                scorecard_id=pair.review_a.scorecard_id,
                total_a_pct=pair.score_a.total_pct,
                total_b_pct=pair.score_b.total_pct,
                total_delta_pct=pair.delta.total_delta_pct,
                abs_total_delta_pct=pair.delta.abs_total_delta_pct,
                section_deltas=dict(pair.delta.section_deltas),
                criterion_deltas=[
                    CriterionDeltaOut(criterion_id=cid, score_a=a, score_b=b, delta=d)
                    for cid, a, b, d in service.criterion_deltas(pair.score_a, pair.score_b)
                ],
                disagreements=list(pair.delta.disagreements),
                auto_fail_mismatch=pair.delta.auto_fail_mismatch,
                agreement_ratio=pair.delta.agreement_ratio,
            )
        )
    return CalibrationOut(
        call_id=result.call_id,
        reviewer_count=result.reviewer_count,
        pairs=pairs,
        skipped_review_ids=list(result.skipped_review_ids),
        max_abs_total_delta_pct=max((p.abs_total_delta_pct for p in pairs), default=None),
    )


@router.post("/sampling/run", response_model=SamplingRunOut)
def run_sampling(body: SamplingRunIn, principal: QaDep, session: SessionDep) -> SamplingRunOut:
    """Pick calls to review: risky calls first, then a random audit; the same seed gives the same sample."""
    considered, picked = reports.run_sampling(
        session,
        principal.actor,
        period_from=body.period_from,
        period_to=body.period_to,
        per_agent=body.per_agent,
        risk_per_agent=body.risk_per_agent,
        seed=body.seed,
        campaign_id=body.campaign_id,
        include_reviewed=body.include_reviewed,
    )
    return SamplingRunOut(
        seed=body.seed,
        period_from=body.period_from,
        period_to=body.period_to,
        considered=considered,
        selected=[
            SampledCallOut(call_id=p.call_id, agent_user_id=p.agent_id, reasons=list(p.reasons))
            for p in picked
        ],
        call_ids=[p.call_id for p in picked],
    )


@router.get("/agents/{user_id}/trend", response_model=TrendOut)
def agent_trend(
    user_id: int,
    principal: AnyUserDep,
    session: SessionDep,
    clock: ClockDep,
    period_from: FromQuery = None,
    period_to: ToQuery = None,
    bucket: TrendBucket = "week",
    tz: str = DEFAULT_TREND_TZ,
) -> TrendOut:
    """Average score, review count and auto-fails per day or week of the call date (agents: their own)."""
    period_to = period_to or clock.now()
    period_from = period_from or period_to - (timedelta(weeks=12) if bucket == "week" else timedelta(days=30))
    points = reports.agent_trend(
        session,
        role=principal.role,
        user_id=principal.user_id,
        agent_user_id=user_id,
        period_from=period_from,
        period_to=period_to,
        bucket=bucket,
        tz_name=tz,
    )
    return TrendOut(
        agent_user_id=user_id,
        bucket=bucket,
        tz=tz,
        points=[TrendPointOut.model_validate(p, from_attributes=True) for p in points],
    )
