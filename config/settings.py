"""Process settings from environment variables (prefix `CC_`) and an optional env file.

Defaults are the embedded ones (SQLite, in-process task runner, sandbox PBX) so the quick start
needs no services. Production refuses the development secrets.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEV_SECRET = "dev-only-secret-change-me-0123456789"
DEV_AMI_SECRET = "dialer-secret"


class Settings(BaseSettings):
    """Every tunable of every process; one instance is built per process at wiring time."""

    model_config = SettingsConfigDict(env_prefix="CC_", env_file=".env", extra="ignore")

    environment: Literal["development", "test", "production"] = "development"
    # URLs may embed passwords: kept out of repr() so a logged settings object never shows them.
    database_url: str = Field(default="sqlite:///./var/callcenter.db", repr=False)
    redis_url: str | None = Field(default=None, repr=False)  # None: in-memory counters, eager tasks
    celery_broker_url: str | None = Field(default=None, repr=False)
    secret_key: SecretStr = SecretStr(DEV_SECRET)
    token_ttl_s: int = 12 * 3600
    default_region: str = "CN"
    default_language: Literal["zh-CN", "en"] = "zh-CN"

    api_host: str = "127.0.0.1"
    api_port: int = 8000
    # One process serves ~86 requests/s on a 2-vCPU box, two ~96 (bench/RESULTS.md); one per core.
    api_workers: int = Field(default=1, ge=1, le=64)

    # AMI and AGI bind/connect to loopback by default: these protocols carry no encryption.
    ami_host: str = "127.0.0.1"
    ami_port: int = 5038
    ami_username: str = "dialer"
    ami_secret: SecretStr = SecretStr(DEV_AMI_SECRET)
    agi_host: str = "127.0.0.1"
    agi_port: int = 4573
    agi_secret: SecretStr | None = None
    agi_fail_policy: Literal["allow", "block"] = "allow"  # fail-open for an inbound sales line
    agi_deadline_s: float = 0.2

    dialer_node: str = "dialer-1"  # one engine per PBX; campaigns with dialer_node "" or this name
    dialer_tick_s: float = 1.0
    dialer_wrap_s: float = 30.0  # wrap-up time before pacing counts an agent as soon free
    agi_session_deadline_s: float = 60.0  # a whole AGI call, prompts and DTMF included
    sandbox_time_scale: float = 1.0  # < 1 runs sandbox call time faster (tests, demos)

    recordings_dir: Path = Path("var/recordings")
    login_max_failures: int = 5
    login_lockout_s: int = 300

    @model_validator(mode="after")
    def _refuse_default_secrets(self) -> Settings:
        if self.environment == "production":
            if self.secret_key.get_secret_value() == DEV_SECRET:
                raise ValueError("CC_SECRET_KEY must be set to a real secret in production")
            if self.ami_secret.get_secret_value() == DEV_AMI_SECRET:
                raise ValueError("CC_AMI_SECRET must be set to a real secret in production")
            if len(self.secret_key.get_secret_value()) < 32:
                raise ValueError("CC_SECRET_KEY must be at least 32 characters in production")
        return self

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The settings of this process, read once from the environment."""
    return Settings()
