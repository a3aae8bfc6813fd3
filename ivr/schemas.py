"""API schemas for number rules, trunks, screening settings and decisions."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

RuleKind = Literal["exact", "prefix", "range", "pattern"]
RuleAction = Literal["allow", "block", "challenge"]
RulePurpose = Literal["screening", "dnc"]
SCOPE_PATTERN = r"^(global|trunk:[A-Za-z0-9_.-]{1,56}|campaign:\d{1,12})$"


class NumberRuleIn(BaseModel):
    purpose: RulePurpose = "screening"
    kind: RuleKind
    value: str = Field(min_length=1, max_length=64)
    value_end: str = Field(default="", max_length=64)
    action: RuleAction = "block"
    scope: str = Field(default="global", pattern=SCOPE_PATTERN)
    expires_at: datetime | None = None
    source: str = Field(default="manual", max_length=64)
    reason: str = Field(default="", max_length=500)

    @model_validator(mode="after")
    def _shape(self) -> NumberRuleIn:
        if self.kind == "range" and not self.value_end:
            raise ValueError("a range rule needs value_end")
        if self.kind != "range" and self.value_end:
            raise ValueError("value_end is only for range rules")
        if self.purpose == "dnc" and self.action != "block":
            raise ValueError("a do-not-call rule always blocks")
        return self


class NumberRuleOut(NumberRuleIn):
    model_config = ConfigDict(from_attributes=True)
    id: int
    hits: int
    created_at: datetime


class TrunkIn(BaseModel):
    name: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")
    description: str = Field(default="", max_length=500)
    allowed_caller_patterns: list[str] = Field(default_factory=list, max_length=1000)
    authorised_protected_numbers: list[str] = Field(default_factory=list, max_length=1000)


class TrunkOut(TrunkIn):
    model_config = ConfigDict(from_attributes=True)
    id: int


class ScreeningSettings(BaseModel):
    """Operator-tunable screening settings (the rest of the rules are number rules and trunks)."""

    protected_numbers: list[str] = Field(
        default_factory=lambda: [
            "110",
            "119",
            "120",
            "122",
            "10000",
            "10010",
            "10086",
            "95533",
            "95588",
            "95599",
        ]
    )
    disguise_prefixes: list[str] = Field(
        default_factory=lambda: ["00196", "00195", "00190", "17900", "17911"]
    )
    disguise_action: Literal["challenge", "block"] = "challenge"
    neighbour_spoof_digits: int = Field(default=7, ge=0, le=12)
    bulk_window_s: int = Field(default=60, ge=5, le=3600)
    bulk_caller_threshold: int = Field(default=5, ge=2, le=10_000)
    bulk_prefix_threshold: int = Field(default=30, ge=2, le=100_000)
    bulk_action: Literal["challenge", "block"] = "challenge"
    challenge_timeout_s: float = Field(default=5.0, ge=1.0, le=30.0)
    challenge_retries: int = Field(default=2, ge=0, le=5)
    challenge_pass_allow_s: int = Field(default=3600, ge=0, le=30 * 86400)
    fail_policy: Literal["allow", "block"] = "allow"


class ScreeningDecisionOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    at: datetime
    uniqueid: str
    caller: str
    called: str
    trunk: str
    action: str
    final_action: str
    reasons: list[Any]
    latency_us: int


class RuleImportReport(BaseModel):
    imported: int
    rejected: int
    errors: list[dict[str, Any]]


class BlockCallerIn(BaseModel):
    reason: str = Field(default="blocked from a call record", max_length=500)
    expires_at: datetime | None = None
