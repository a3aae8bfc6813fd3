"""The `screen` FastAGI route: evidence from the AGI env, the pure decision, the IVR challenge, the verdict.

Like wazo-agid's screen_blocklist, the handler only reports (`SCREEN_RESULT`, `SCREEN_REASONS`) and the
dialplan acts (config/asterisk/extensions.conf [inbound]). Failure is a decision, not an accident: if the
decision cannot be made within `deadline_s` (Redis slow or down, a bug), the configured fail policy
answers (fail-open by default for an inbound sales line) and the reason `fail_policy` is recorded.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from core.clock import Clock
from ivr.agi.channel import AgiChannel
from ivr.agi.protocol import AgiEnv, ChannelHungUp
from ivr.agi.variables import SCREEN_REASONS, SCREEN_RESULT
from ivr.challenge import ChallengeResult, pick_digit, prompt_name
from ivr.screening import (
    AttestationResult,
    BulkVerdict,
    CompiledRules,
    Decision,
    Evidence,
    Reason,
    ScreeningConfig,
    caller_key,
    screen,
    verify_identity,
)

log = logging.getLogger(__name__)
IDENTITY_VARIABLE = "SIP_IDENTITY"  # set by the dialplan from PJSIP_HEADER(read,Identity)

BulkObserve = Callable[[str, float], Awaitable[BulkVerdict] | BulkVerdict]


@dataclass(frozen=True, slots=True)
class ScreeningRecord:
    """One screened call, as stored in `screening_decision`."""

    at: datetime
    uniqueid: str
    caller: str
    called: str
    trunk: str
    action: str
    final_action: str
    reasons: list[dict[str, Any]]
    latency_us: int
    details: dict[str, Any]


@dataclass(slots=True)
class ScreeningState:
    """What the handler reads per call; the wiring swaps `rules`/`config` when the admin changes them."""

    rules: CompiledRules
    config: ScreeningConfig
    certificates: dict[str, str] = field(default_factory=dict)
    challenge_timeout_ms: int = 5000
    challenge_retries: int = 2
    pass_allow_s: int = 3600
    recently_passed: dict[str, float] = field(default_factory=dict)  # caller key -> until (monotonic)


class ScreeningHandler:
    """`async handler(env, channel)` for the AGI server's `screen` route."""

    def __init__(
        self,
        *,
        state: ScreeningState,
        clock: Clock,
        bulk_observe: BulkObserve | None,
        record: Callable[[ScreeningRecord], None],
        deadline_s: float = 0.2,
        rng: random.Random | None = None,
    ) -> None:
        self.state = state
        self.clock = clock
        self.bulk_observe = bulk_observe
        self.record = record
        self.deadline_s = deadline_s
        self.rng = rng or random.SystemRandom()

    async def __call__(self, env: AgiEnv, channel: AgiChannel) -> None:
        started = time.perf_counter()
        trunk = env.query.get("trunk", "")
        called = env.args[0] if env.args else env.dnid or env.extension
        try:
            async with asyncio.timeout(self.deadline_s):  # no extra task per call, unlike wait_for
                decision = await self._decide(env, channel, trunk, called)
        except Exception as exc:  # TimeoutError included: the fail policy is the answer
            policy = self.state.config.fail_policy
            log.warning("screening fell back to %s for %s: %r", policy, env.uniqueid, exc)
            decision = Decision(policy, (Reason("fail_policy", type(exc).__name__, None, policy),))
        latency_us = int((time.perf_counter() - started) * 1e6)
        final = decision.action
        challenge: ChallengeResult | None = None
        if decision.action == "challenge":
            challenge = await self._challenge(channel)
            final = "allow" if challenge.passed else "block"
            if challenge.passed and self.state.pass_allow_s > 0:
                key = caller_key(env.callerid) or env.callerid
                self.state.recently_passed[key] = time.monotonic() + self.state.pass_allow_s
        codes = ",".join(decision.codes)[:200]
        try:
            await channel.set_variable(SCREEN_REASONS, codes or "none")
            await channel.set_variable(SCREEN_RESULT, final)
        except ChannelHungUp:
            pass  # SET VARIABLE works on dead channels; only a closed socket ends up here
        self.record(
            ScreeningRecord(
                at=self.clock.now(),
                uniqueid=env.uniqueid[:64],
                caller=env.callerid[:64],
                called=called[:64],
                trunk=trunk[:64],
                action=decision.action,
                final_action=final,
                reasons=[
                    {"code": r.code, "detail": r.detail, "rule_id": r.rule_id, "action": r.action}
                    for r in decision.reasons
                ],
                latency_us=latency_us,
                details={
                    "suspicious_env": list(env.suspicious_reasons),
                    "challenge": None
                    if challenge is None
                    else {
                        "passed": challenge.passed,
                        "tries": challenge.tries,
                        "hung_up": challenge.caller_hung_up,
                    },
                },
            )
        )

    async def _decide(self, env: AgiEnv, channel: AgiChannel, trunk: str, called: str) -> Decision:
        state = self.state
        now = self.clock.now()
        key = caller_key(env.callerid)
        if key is not None and state.recently_passed.get(key, 0.0) > time.monotonic():
            return Decision("allow", (Reason("challenge_passed_recently", "", None, "allow"),))
        identity_header: str | None = None
        identity: AttestationResult | None = None
        if state.certificates:
            reply = await channel.get_variable(IDENTITY_VARIABLE)
            identity_header = reply.data or None
            if identity_header:
                identity = verify_identity(
                    identity_header,
                    caller=env.callerid,
                    now=now,
                    certificates=state.certificates,
                    called=called,
                )
        stats: BulkVerdict | None = None
        if self.bulk_observe is not None and key is not None:
            observed = self.bulk_observe(key, now.timestamp())
            stats = await observed if isinstance(observed, Awaitable) else observed
        evidence = Evidence(
            caller=env.callerid,
            caller_name=env.calleridname,
            called=called,
            trunk=trunk,
            now=now,
            identity_header=identity_header,
        )
        decision = screen(evidence, state.rules, state.config, stats=stats, identity=identity)
        if env.suspicious and decision.action == "allow":
            # The env itself was tampered with (CR/LF in caller ID): never let such a call straight in.
            reason = Reason("suspicious_agi_env", "; ".join(env.suspicious_reasons)[:200], None, "challenge")
            return Decision("challenge", (*decision.reasons, reason))
        return decision

    async def _challenge(self, channel: AgiChannel) -> ChallengeResult:
        asked: list[str] = []
        answered: list[str] = []
        try:
            await channel.answer()
            for _ in range(self.state.challenge_retries + 1):
                digit = pick_digit(self.rng)
                asked.append(digit)
                reply = await channel.get_data(prompt_name(digit), self.state.challenge_timeout_ms, 1)
                got = "" if reply.timed_out else reply.result
                answered.append(got)
                if got == digit:
                    return ChallengeResult(True, len(asked), tuple(asked), tuple(answered))
        except ChannelHungUp:
            return ChallengeResult(False, len(asked), tuple(asked), tuple(answered), caller_hung_up=True)
        return ChallengeResult(False, len(asked), tuple(asked), tuple(answered))
