from __future__ import annotations

import pytest
from pydantic import ValidationError

from config.settings import Settings


def test_embedded_defaults() -> None:
    s = Settings(_env_file=None)  # type: ignore[call-arg]
    assert s.is_sqlite and s.redis_url is None and s.default_region == "CN"
    assert s.ami_host == "127.0.0.1" and s.agi_host == "127.0.0.1"


def test_production_refuses_default_secrets() -> None:
    with pytest.raises(ValidationError, match="CC_SECRET_KEY"):
        Settings(_env_file=None, environment="production")  # type: ignore[call-arg]
    with pytest.raises(ValidationError, match="CC_AMI_SECRET"):
        Settings(_env_file=None, environment="production", secret_key="x" * 40)  # type: ignore[call-arg, arg-type]
    ok = Settings(_env_file=None, environment="production", secret_key="x" * 40, ami_secret="real-one")  # type: ignore[call-arg, arg-type]
    assert ok.environment == "production"


def test_env_vars(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CC_DEFAULT_REGION", "US")
    monkeypatch.setenv("CC_REDIS_URL", "redis://127.0.0.1:6379/0")
    s = Settings(_env_file=None)  # type: ignore[call-arg]
    assert s.default_region == "US" and s.redis_url == "redis://127.0.0.1:6379/0"
