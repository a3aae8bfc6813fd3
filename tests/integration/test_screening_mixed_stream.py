"""Inbound screening end to end: the sandbox calls our FastAGI like Asterisk, with a mixed stream.

Legitimate callers, a robocaller rotating numbers inside one prefix that never presses a digit,
spoofers presenting protected service numbers from an unauthorised trunk, all-zero and disguised callers,
and a caller-ID CR/LF injection. Every decision must be stored with its reasons.
"""

from __future__ import annotations

import random

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from config.settings import Settings
from core.audit import Actor
from core.clock import FixedClock
from core.db import unit_of_work
from dialer.sandbox.agi_caller import CallerBehaviour, InboundCall, InboundResult, run_mixed_stream
from ivr import service
from ivr.main import running_agi
from ivr.models import NumberRule, ScreeningDecision, Trunk
from ivr.schemas import ScreeningSettings

PRESSES = CallerBehaviour(presses="", press_correct=True, press_after_s=0.2, answer_delay_s=0.01)
ROBOT = CallerBehaviour(presses=None, answer_delay_s=0.01)


def _stream(rng: random.Random) -> list[tuple[str, InboundCall]]:
    calls: list[tuple[str, InboundCall]] = []
    for n in range(60):  # legitimate: distinct mobiles and fixed lines across the country
        number = rng.choice([f"139{rng.randrange(10**8):08d}", f"0755{rng.randrange(10**8):08d}"])
        calls.append(
            ("legit", InboundCall(caller_id=number, called="4008001234", behaviour=PRESSES, uniqueid=f"l{n}"))
        )
    for n in range(40):  # robocall burst: rotating numbers in one block, a recording that never presses
        calls.append(
            (
                "robot",
                InboundCall(
                    caller_id=f"1712345{n:04d}", called="4008001234", behaviour=ROBOT, uniqueid=f"r{n}"
                ),
            )
        )
    for n, number in enumerate(["10086", "+8695533", "110", "0086119", "10000"]):
        calls.append(
            ("spoof", InboundCall(caller_id=number, called="4008001234", behaviour=ROBOT, uniqueid=f"s{n}"))
        )
    for n, number in enumerate(["00000000", "", "anonymous", "0019613912345678", "17900139123"]):
        calls.append(
            ("spoof", InboundCall(caller_id=number, called="4008001234", behaviour=ROBOT, uniqueid=f"z{n}"))
        )
    # A blocklisted number, and a raw CR/LF injection trying to change the extension (fixtures README).
    calls.append(
        ("spoof", InboundCall(caller_id="13700000666", called="4008001234", behaviour=ROBOT, uniqueid="b1"))
    )
    calls.append(
        (
            "spoof",
            InboundCall(
                caller_id="5550100\r\nagi_extension: 666", called="4008001234", behaviour=ROBOT, uniqueid="i1"
            ),
        )
    )
    return calls


async def test_mixed_stream_blocks_attacks_and_lets_customers_through(
    session_factory: sessionmaker[Session], settings: Settings, clock: FixedClock
) -> None:
    with unit_of_work(session_factory) as session:
        service.save_settings(
            session,
            Actor(None, "test"),
            ScreeningSettings(
                bulk_prefix_threshold=8, bulk_window_s=60, challenge_timeout_s=2.0, challenge_retries=1
            ),
        )
        session.add(Trunk(name="carrier1", allowed_caller_patterns=[], authorised_protected_numbers=[]))
        session.add(
            NumberRule(
                purpose="screening",
                kind="exact",
                value="+8613700000666",
                action="block",
                reason="fraud report",
            )
        )
    calls = _stream(random.Random(4))
    random.Random(5).shuffle(calls)
    test_settings = settings.model_copy(update={"agi_deadline_s": 0.5})
    async with running_agi(test_settings, session_factory=session_factory, clock=clock, port=0) as (
        server,
        _,
        _writer,
    ):
        results: list[InboundResult] = await run_mixed_stream(
            [call for _, call in calls],
            host="127.0.0.1",
            port=server.port,
            concurrency=50,
            time_scale=0.01,
            prompt_s=0.05,
        )
    kinds = {call.uniqueid: kind for kind, call in calls}
    verdict = {r.call.uniqueid: r.variables.get("SCREEN_RESULT") for r in results}
    errors = [r.error for r in results if r.error]
    assert not errors, errors[:3]
    legit = [u for u, k in kinds.items() if k == "legit"]
    robots = [u for u, k in kinds.items() if k == "robot"]
    spoofs = [u for u, k in kinds.items() if k == "spoof"]
    assert all(verdict[u] == "allow" for u in legit), {u: verdict[u] for u in legit if verdict[u] != "allow"}
    assert all(verdict[u] != "allow" for u in spoofs), {
        u: verdict[u] for u in spoofs if verdict[u] == "allow"
    }
    blocked_robots = sum(verdict[u] != "allow" for u in robots)
    assert blocked_robots >= len(robots) - 8  # the burst is caught once the prefix crosses its threshold
    with unit_of_work(session_factory) as session:
        rows = {d.uniqueid: d for d in session.scalars(select(ScreeningDecision))}
    assert set(rows) == set(kinds)
    assert all(rows[u].reasons for u in spoofs)
    assert rows["b1"].final_action == "block" and any(r["rule_id"] for r in rows["b1"].reasons)
    # The injected caller ID neither changed the routing target nor slipped through.
    assert rows["i1"].called == "4008001234" and rows["i1"].final_action != "allow"
    challenged_robot = next(rows[u] for u in robots if rows[u].action == "challenge")
    assert (
        challenged_robot.final_action == "block" and challenged_robot.details["challenge"]["passed"] is False
    )
