"""API schemas for QA: call search, scorecards, reviews, calibration, sampling and trends."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictFloat, StrictInt, StrictStr

ScorecardLang = Literal["zh-CN", "en"]
TrendBucket = Literal["day", "week"]
# Strict types: a JSON `true` must not pass as the score 1.0, and lists or objects never reach the scorer.
AnswerValue = StrictStr | StrictInt | StrictFloat


class QaCallOut(BaseModel):
    """One row of the QA call search: the CDR, its latest recording and latest review."""

    id: int
    direction: str
    started_at: datetime
    agent_user_id: int | None
    campaign_id: int | None
    lead_id: int | None
    from_number: str
    to_number: str
    talk_s: float
    outcome: str
    disposition_code: str
    recording_id: int | None
    recording_status: str | None
    recording_duration_s: float | None
    latest_review_id: int | None
    latest_score_pct: float | None
    latest_auto_failed: bool | None
    review_count: int


class CriterionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: str = Field(min_length=1, max_length=64)
    label: str = Field(min_length=1, max_length=256)
    guidance: str = Field(default="", max_length=2000)
    weight: int = Field(ge=0, le=1000)
    auto_fail: bool = False
    allow_na: bool = False


class SectionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: str = Field(min_length=1, max_length=64)
    label: str = Field(min_length=1, max_length=256)
    criteria: list[CriterionIn] = Field(min_length=1, max_length=100)


class ScorecardIn(BaseModel):
    """A scorecard form; posting an existing name in the same language creates its next version."""

    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=128)
    lang: ScorecardLang = "zh-CN"
    title: str = Field(min_length=1, max_length=256)
    pass_pct: float = Field(default=80.0, ge=0.0, le=100.0)
    sections: list[SectionIn] = Field(min_length=1, max_length=50)


class ScorecardOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    name: str
    version: int
    is_active: bool
    body: dict[str, Any]
    created_at: datetime


class CommentIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    at_s: float = Field(ge=0.0, description="Position in the recording, in seconds")
    text: str = Field(min_length=1, max_length=4000)


class ReviewIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    call_id: int
    scorecard_id: int
    answers: dict[str, AnswerValue] = Field(
        description='Per criterion id: "met", "partial", "not_met", "na" or a number in 0..1'
    )
    summary: str = Field(default="", max_length=8000)
    comments: list[CommentIn] = Field(default_factory=list, max_length=200)


class ReviewOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    call_id: int
    scorecard_id: int
    reviewer_user_id: int
    agent_user_id: int | None
    answers: dict[str, Any]
    total_pct: float
    auto_failed: bool
    comments: list[dict[str, Any]]
    summary: str
    acknowledged_at: datetime | None
    created_at: datetime


class SectionScoreOut(BaseModel):
    section_id: str
    pct: float | None
    earned: float
    possible: float


class ReviewDetailOut(ReviewOut):
    """A review with the breakdown recomputed from its scorecard version (scoring is deterministic)."""

    raw_pct: float
    passed: bool
    section_scores: list[SectionScoreOut]
    auto_fail_items: list[str]


class CriterionDeltaOut(BaseModel):
    criterion_id: str
    score_a: float | None
    score_b: float | None
    delta: float | None  # b - a; None when either side is n/a


class CalibrationPairOut(BaseModel):
    review_a_id: int
    review_b_id: int
    reviewer_a_user_id: int
    reviewer_b_user_id: int
    scorecard_id: int
    total_a_pct: float
    total_b_pct: float
    total_delta_pct: float
    abs_total_delta_pct: float
    section_deltas: dict[str, float | None]
    criterion_deltas: list[CriterionDeltaOut]
    disagreements: list[str]
    auto_fail_mismatch: bool
    agreement_ratio: float


class CalibrationOut(BaseModel):
    call_id: int
    reviewer_count: int
    pairs: list[CalibrationPairOut]
    # Latest reviews by different reviewers that used another scorecard version cannot be compared.
    skipped_review_ids: list[int]
    max_abs_total_delta_pct: float | None


class SamplingRunIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    period_from: datetime = Field(alias="from")
    period_to: datetime = Field(alias="to")
    per_agent: int = Field(default=5, ge=1, le=100, description="Calls to pick per agent (risk + random)")
    risk_per_agent: int | None = Field(
        default=None, ge=0, le=100, description="Most risk picks per agent; default 3/5 of per_agent"
    )
    seed: StrictInt | StrictStr
    campaign_id: int | None = None
    include_reviewed: bool = False


class SampledCallOut(BaseModel):
    call_id: int
    agent_user_id: int | None
    reasons: list[str]


class SamplingRunOut(BaseModel):
    seed: int | str
    period_from: datetime
    period_to: datetime
    considered: int
    selected: list[SampledCallOut]
    call_ids: list[int]


class TrendPointOut(BaseModel):
    bucket_start: datetime
    review_count: int
    average_pct: float | None
    auto_fail_count: int


class TrendOut(BaseModel):
    agent_user_id: int
    bucket: TrendBucket
    tz: str
    points: list[TrendPointOut]
