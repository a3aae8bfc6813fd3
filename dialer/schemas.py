"""API schemas for campaigns, lead lists, leads and imports."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

DialMode = Literal["preview", "progressive", "ratio", "predictive"]
CampaignStatus = Literal["active", "paused", "archived"]


class CampaignIn(BaseModel):
    name: str = Field(min_length=1, max_length=128)
    dial_mode: DialMode = "progressive"
    dial_ratio: float = Field(default=1.0, ge=1.0, le=5.0)
    max_lines: int = Field(default=50, ge=1, le=1000)
    caller_id_number: str = Field(min_length=3, max_length=32)
    caller_id_name: str = Field(default="", max_length=64)
    company_name: str = Field(default="", max_length=128)
    callback_number: str = Field(default="", max_length=32)
    regime: Literal["CN", "US", "UK"] = "CN"
    abandon_target: float = Field(default=0.03, gt=0, le=0.03)
    ring_timeout_s: int = Field(default=25, ge=15, le=120)  # ≥ 15 s: regulators' minimum ring time
    max_attempts: int = Field(default=5, ge=1, le=50)
    calling_windows: dict[str, Any] = Field(default_factory=dict)
    retry_rules: dict[str, Any] = Field(default_factory=dict)
    queue_name: str = Field(default="", max_length=64)


class CampaignPatch(BaseModel):
    name: str | None = Field(default=None, min_length=1, max_length=128)
    status: CampaignStatus | None = None
    dial_mode: DialMode | None = None
    dial_ratio: float | None = Field(default=None, ge=1.0, le=5.0)
    max_lines: int | None = Field(default=None, ge=1, le=1000)
    caller_id_name: str | None = Field(default=None, max_length=64)
    company_name: str | None = Field(default=None, max_length=128)
    callback_number: str | None = Field(default=None, max_length=32)
    abandon_target: float | None = Field(default=None, gt=0, le=0.03)
    ring_timeout_s: int | None = Field(default=None, ge=15, le=120)
    max_attempts: int | None = Field(default=None, ge=1, le=50)
    calling_windows: dict[str, Any] | None = None
    retry_rules: dict[str, Any] | None = None
    queue_name: str | None = Field(default=None, max_length=64)


class CampaignOut(CampaignIn):
    model_config = ConfigDict(from_attributes=True)
    id: int
    status: CampaignStatus
    created_at: datetime


class LeadListIn(BaseModel):
    name: str = Field(min_length=1, max_length=128)
    priority: int = Field(default=0, ge=-100, le=100)


class LeadListOut(LeadListIn):
    model_config = ConfigDict(from_attributes=True)
    id: int
    campaign_id: int
    is_active: bool


class LeadIn(BaseModel):
    phone: str = Field(min_length=1, max_length=64)
    list_id: int | None = None
    name: str = Field(default="", max_length=128)
    company: str = Field(default="", max_length=256)
    segment: str = Field(default="", max_length=32)
    grade: Literal["", "A", "B", "C"] = ""
    priority: int = Field(default=0, ge=-1000, le=1000)
    custom: dict[str, str] = Field(default_factory=dict, max_length=100)


class LeadPatch(BaseModel):
    name: str | None = Field(default=None, max_length=128)
    company: str | None = Field(default=None, max_length=256)
    segment: str | None = Field(default=None, max_length=32)
    grade: Literal["", "A", "B", "C"] | None = None
    priority: int | None = Field(default=None, ge=-1000, le=1000)
    man_money: bool | None = None
    man_authority: bool | None = None
    man_need: bool | None = None
    next_call_at: datetime | None = None


class LeadOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    campaign_id: int
    list_id: int | None
    phone_e164: str
    name: str
    company: str
    segment: str
    region: str
    timezone: str
    grade: str
    man_money: bool
    man_authority: bool
    man_need: bool
    custom: dict[str, Any]
    priority: int
    status: str
    attempts: int
    last_outcome: str
    next_call_at: datetime | None


class ImportJobOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    campaign_id: int
    list_id: int
    filename: str
    status: str
    total_rows: int
    processed_rows: int
    imported: int
    rejected: int
    errors: list[dict[str, Any]]
    failure: str
    created_at: datetime
    finished_at: datetime | None
