"""Inbound call screening, pure: number rules, the decision, bulk detection, STIR/SHAKEN verification."""

from ivr.screening.bulk import (
    BulkConfig,
    BulkVerdict,
    InMemoryBulkDetector,
    RedisBulkDetector,
    SlidingWindowCounter,
)
from ivr.screening.decision import (
    Action,
    Decision,
    Evidence,
    Reason,
    ScreeningConfig,
    TrunkPolicy,
    caller_key,
    screen,
)
from ivr.screening.rules import CompiledRules, RuleError, RuleMatch, RuleSpec, compile_rules
from ivr.screening.stir_shaken import (
    AttestationResult,
    parse_identity_header,
    verify_identity,
)

__all__ = [
    "Action",
    "AttestationResult",
    "BulkConfig",
    "BulkVerdict",
    "CompiledRules",
    "Decision",
    "Evidence",
    "InMemoryBulkDetector",
    "Reason",
    "RedisBulkDetector",
    "RuleError",
    "RuleMatch",
    "RuleSpec",
    "ScreeningConfig",
    "SlidingWindowCounter",
    "TrunkPolicy",
    "caller_key",
    "compile_rules",
    "parse_identity_header",
    "screen",
    "verify_identity",
]
