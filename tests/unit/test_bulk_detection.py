"""ivr.screening.bulk: sliding windows per caller, prefix and rotating pattern; flag expiry; Redis twin."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest

from ivr.schemas import ScreeningSettings
from ivr.screening.bulk import (
    BulkConfig,
    BulkVerdict,
    InMemoryBulkDetector,
    RedisBulkDetector,
    SlidingWindowCounter,
)

CFG = BulkConfig(window_s=60, caller_threshold=5, prefix_threshold=10, pattern_threshold=8)
T0 = 1_800_000_000.0


def test_protocol_and_settings() -> None:
    detector: SlidingWindowCounter = InMemoryBulkDetector(CFG)
    assert detector.observe("8613812345678", T0) == BulkVerdict(1, 1, 1)
    config = BulkConfig.from_settings(ScreeningSettings(bulk_window_s=30, bulk_caller_threshold=3))
    assert (config.window_s, config.caller_threshold, config.prefix_threshold, config.ttl) == (30, 3, 30, 30)


@pytest.mark.parametrize(
    ("calls", "expected_codes"),
    [
        # (caller, seconds after T0) ...; the codes of the last call's verdict
        ([("8613812345678", i) for i in range(4)], ()),
        ([("8613812345678", i) for i in range(5)], ("bulk_caller",)),
        ([("8613812345678", i * 20) for i in range(5)], ()),  # 5 calls over 80 s: never 5 in 60 s
        ([("8613812345678", i * 14) for i in range(5)], ("bulk_caller",)),  # 56 s
        ([(f"86138123456{i:02d}", i) for i in range(7)], ()),
        ([(f"86138123456{i:02d}", i) for i in range(8)], ("bulk_pattern",)),  # 8 distinct, same shape
        ([(f"8613812345{i % 3}{i:02d}", i) for i in range(10)], ("bulk_prefix", "bulk_pattern")),
        ([(f"8613812345{i % 2}00", i) for i in range(10)], ("bulk_caller", "bulk_prefix")),  # 2 numbers
        ([(f"8613812{i:02d}5678", i) for i in range(10)], ()),  # ten different 9-digit blocks
        ([("8613812345" + "6" * i, i) for i in range(8)], ()),  # different lengths: not one pattern
    ],
)
def test_windows(calls: list[tuple[str, float]], expected_codes: tuple[str, ...]) -> None:
    detector = InMemoryBulkDetector(CFG)
    verdict = BulkVerdict()
    for caller, offset in calls:
        verdict = detector.observe(caller, T0 + offset)
    assert tuple(code for code, _ in verdict.reasons) == expected_codes
    assert verdict.flagged is bool(expected_codes)


def test_counts_and_detail() -> None:
    detector = InMemoryBulkDetector(CFG)
    for i in range(5):
        verdict = detector.observe("8613812345678", T0 + i)
    assert (verdict.caller_count, verdict.prefix_count, verdict.pattern_count) == (5, 5, 1)
    assert verdict.reasons == (("bulk_caller", "8613812345678: 5 calls in 60 s"),)


def test_flag_outlives_the_burst_then_expires() -> None:
    detector = InMemoryBulkDetector(CFG)
    for i in range(5):
        detector.observe("8613812345678", T0 + i)  # flagged at T0+4 until T0+64
    later = detector.observe("8613812345678", T0 + 50)
    assert later.caller_count == 6 and later.flagged
    quiet = detector.observe("8613812345678", T0 + 63.9)
    assert quiet.caller_count == 3  # T0+4 and T0+50 and now (T0+0..3 left the window)
    assert quiet.flagged  # still within the flag's lifetime
    gone = detector.observe("8613812345678", T0 + 200)
    assert gone == BulkVerdict(1, 1, 1)


def test_stale_keys_are_swept() -> None:
    detector = InMemoryBulkDetector(CFG)
    for i in range(1000):
        detector.observe(f"86{13800000000 + i * 7919}", T0 + i / 100)
    assert len(detector) > 1000
    detector.observe("8613900000000", T0 + 500)
    assert len(detector) == 3  # only the last caller's three keys survive


def test_flag_ttl_is_configurable() -> None:
    detector = InMemoryBulkDetector(BulkConfig(window_s=10, caller_threshold=2, flag_ttl_s=300))
    detector.observe("861", T0)
    assert detector.observe("861", T0 + 1).flagged
    assert detector.observe("861", T0 + 200).flagged  # window passed, flag lives on
    assert not detector.observe("861", T0 + 400).flagged


@pytest.fixture
async def redis_client() -> AsyncIterator[object]:
    redis_asyncio = pytest.importorskip("redis.asyncio")
    client = redis_asyncio.Redis(host="127.0.0.1", port=6379, decode_responses=True)
    try:
        await client.ping()
    except Exception as exc:  # pragma: no cover - depends on the environment
        await client.aclose()
        pytest.skip(f"Redis not reachable: {exc}")
    yield client
    await client.aclose()


@pytest.mark.redis
async def test_redis_detector_matches_in_memory(redis_client: object) -> None:
    prefix = f"test:bulk:{uuid.uuid4().hex}:"
    redis_detector = RedisBulkDetector(redis_client, CFG, key_prefix=prefix)
    memory = InMemoryBulkDetector(CFG)
    calls = [("8613812345678", 0.0)] * 3 + [(f"86138123456{i:02d}", 1.0 + i) for i in range(12)]
    calls += [("8613812345678", 13.0), ("8613812345678", 14.0), ("8613812345678", 70.0)]
    calls += [("8613800000000", 200.0)]
    try:
        for caller, offset in calls:
            expected = memory.observe(caller, T0 + offset)
            assert await redis_detector.observe(caller, T0 + offset) == expected, (caller, offset)
        keys = [k async for k in redis_client.scan_iter(match=prefix + "*")]  # type: ignore[attr-defined]
        ttls = [await redis_client.ttl(k) for k in keys]  # type: ignore[attr-defined]
        assert keys and all(ttl > 0 for ttl in ttls)  # nothing is left behind forever
    finally:
        keys = [k async for k in redis_client.scan_iter(match=prefix + "*")]  # type: ignore[attr-defined]
        if keys:
            await redis_client.delete(*keys)  # type: ignore[attr-defined]
