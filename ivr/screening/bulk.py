"""Bulk-call detection: bursts from one number, one prefix, or a rotating set of same-shaped numbers.

Three sliding windows per observed call (caller = the canonical digits from decision.caller_key):
  caller  - calls from this exact number;
  prefix  - calls from numbers sharing the first `prefix_digits` digits (one gateway or number block);
  pattern - *distinct* numbers of the same length sharing the first `pattern_digits` digits: a
            robocaller rotating the last digits makes few calls per number but many numbers.
A count reaching its threshold flags that key for `flag_ttl_s` (default: the window), so a burst
keeps being challenged for a while after it slows down, then the flag expires by itself.

Time is a value (`now`, seconds on any clock that does not go backwards, e.g. datetime.timestamp()).
InMemoryBulkDetector is a pure data structure for one process and the tests; RedisBulkDetector keeps
the same windows in Redis so that all AGI workers share them.
"""

from __future__ import annotations

import math
from collections import OrderedDict, deque
from dataclasses import dataclass
from itertools import count
from typing import Any, Protocol

from ivr.schemas import ScreeningSettings


@dataclass(frozen=True, slots=True)
class BulkConfig:
    window_s: float = 60.0
    caller_threshold: int = 5
    prefix_threshold: int = 30
    pattern_threshold: int = 20
    prefix_digits: int = 9  # "86" + 7 national digits: a CN mobile number block (138-1234)
    pattern_digits: int = 9  # the same block, but distinct numbers of one length
    flag_ttl_s: float | None = None  # None: the window

    @property
    def ttl(self) -> float:
        return self.window_s if self.flag_ttl_s is None else self.flag_ttl_s

    @classmethod
    def from_settings(cls, settings: ScreeningSettings, **extra: Any) -> BulkConfig:
        return cls(
            window_s=float(settings.bulk_window_s),
            caller_threshold=settings.bulk_caller_threshold,
            prefix_threshold=settings.bulk_prefix_threshold,
            **extra,
        )


@dataclass(frozen=True, slots=True)
class BulkVerdict:
    caller_count: int = 0
    prefix_count: int = 0
    pattern_count: int = 0  # distinct numbers
    reasons: tuple[tuple[str, str], ...] = ()  # (code, detail): bulk_caller / bulk_prefix / bulk_pattern

    @property
    def flagged(self) -> bool:
        return bool(self.reasons)


class SlidingWindowCounter(Protocol):
    """What screening needs from a bulk detector (RedisBulkDetector offers the same, awaitable)."""

    def observe(self, caller: str, now: float) -> BulkVerdict: ...


def window_keys(caller: str, config: BulkConfig) -> tuple[str, str, str]:
    """(caller key, prefix key, pattern key) for one caller; shared by both detectors."""
    return (
        f"c:{caller}",
        f"p:{caller[: config.prefix_digits]}",
        f"t:{len(caller)}:{caller[: config.pattern_digits]}",
    )


def assess(
    counts: tuple[int, int, int], flagged: tuple[bool, bool, bool], config: BulkConfig, caller: str
) -> tuple[BulkVerdict, tuple[bool, bool, bool]]:
    """The verdict, and which of the three keys newly reached its threshold (to be flagged)."""
    thresholds = (config.caller_threshold, config.prefix_threshold, config.pattern_threshold)
    crossing = tuple(n >= t for n, t in zip(counts, thresholds, strict=True))
    names = ("bulk_caller", "bulk_prefix", "bulk_pattern")
    scopes = (
        caller,
        caller[: config.prefix_digits] + "*",
        caller[: config.pattern_digits] + "?" * max(0, len(caller) - config.pattern_digits),
    )
    units = ("calls", "calls", "numbers")
    reasons = tuple(
        (names[i], f"{scopes[i]}: {counts[i]} {units[i]} in {config.window_s:g} s")
        for i in range(3)
        if crossing[i] or flagged[i]
    )
    verdict = BulkVerdict(counts[0], counts[1], counts[2], reasons)
    return verdict, (crossing[0], crossing[1], crossing[2])


class InMemoryBulkDetector:
    """The three windows in dicts of deques; O(1) amortised per call, stale keys swept once a window."""

    def __init__(self, config: BulkConfig | None = None) -> None:
        self.config = config or BulkConfig()
        self._events: dict[str, deque[float]] = {}
        self._members: dict[str, OrderedDict[str, float]] = {}
        self._flags: dict[str, float] = {}
        self._last_sweep: float | None = None

    def __len__(self) -> int:
        """Keys held (for tests and memory monitoring)."""
        return len(self._events) + len(self._members) + len(self._flags)

    def observe(self, caller: str, now: float) -> BulkVerdict:
        """Record one call from `caller` at `now` and say whether it is part of a burst."""
        cfg = self.config
        cutoff = now - cfg.window_s
        if self._last_sweep is None or now - self._last_sweep >= cfg.window_s:
            self._sweep(now, cutoff)
        ck, pk, tk = window_keys(caller, cfg)
        counts = (
            self._hit(ck, now, cutoff),
            self._hit(pk, now, cutoff),
            self._distinct(tk, caller, now, cutoff),
        )
        flagged = (self._flagged(ck, now), self._flagged(pk, now), self._flagged(tk, now))
        verdict, crossing = assess(counts, flagged, cfg, caller)
        for key, newly in zip((ck, pk, tk), crossing, strict=True):
            if newly:
                self._flags[key] = now + cfg.ttl
        return verdict

    def _hit(self, key: str, now: float, cutoff: float) -> int:
        events = self._events.get(key)
        if events is None:
            events = self._events[key] = deque()
        events.append(now)
        while events[0] <= cutoff:
            events.popleft()
        return len(events)

    def _distinct(self, key: str, caller: str, now: float, cutoff: float) -> int:
        members = self._members.get(key)
        if members is None:
            members = self._members[key] = OrderedDict()
        members[caller] = now
        members.move_to_end(caller)  # oldest first, so expiry pops from the front
        while next(iter(members.values())) <= cutoff:
            members.popitem(last=False)
        return len(members)

    def _flagged(self, key: str, now: float) -> bool:
        until = self._flags.get(key)
        return until is not None and until > now

    def _sweep(self, now: float, cutoff: float) -> None:
        self._last_sweep = now
        for key in [k for k, v in self._events.items() if v[-1] <= cutoff]:
            del self._events[key]
        for key in [k for k, m in self._members.items() if next(reversed(m.values())) <= cutoff]:
            del self._members[key]
        for key in [k for k, until in self._flags.items() if until <= now]:
            del self._flags[key]


class RedisBulkDetector:
    """The same windows in Redis sorted sets (score = time), one round trip per call.

    `redis` is a redis.asyncio.Redis (decode_responses either way). Keys expire by themselves
    shortly after the window, so an idle caller leaves nothing behind.
    """

    def __init__(self, redis: Any, config: BulkConfig | None = None, *, key_prefix: str = "cc:bulk:") -> None:
        self.redis = redis
        self.config = config or BulkConfig()
        self.key_prefix = key_prefix
        self._seq = count()  # distinguishes two calls in the same microsecond within this process

    async def observe(self, caller: str, now: float) -> BulkVerdict:
        cfg = self.config
        cutoff = now - cfg.window_s
        expire_s = math.ceil(max(cfg.window_s, cfg.ttl)) + 1
        keys = [self.key_prefix + k for k in window_keys(caller, cfg)]
        event = f"{now:.6f}:{id(self):x}:{next(self._seq)}"
        pipe = self.redis.pipeline(transaction=True)
        for key, member in zip(keys, (event, event, caller), strict=True):
            pipe.zadd(key, {member: now})
            pipe.zremrangebyscore(key, "-inf", cutoff)
            pipe.zcard(key)
            pipe.expire(key, expire_s)
        pipe.mget([k + ":flag" for k in keys])
        result = await pipe.execute()
        counts = (int(result[2]), int(result[6]), int(result[10]))
        flagged = tuple(until is not None and float(until) > now for until in result[12])
        verdict, crossing = assess(counts, (flagged[0], flagged[1], flagged[2]), cfg, caller)
        if any(crossing):
            pipe = self.redis.pipeline(transaction=False)
            for key, newly in zip(keys, crossing, strict=True):
                if newly:
                    # The stored "until" is what counts (time is a value here too); PX only cleans up.
                    pipe.set(key + ":flag", repr(now + cfg.ttl), px=int(cfg.ttl * 1000) + 1000)
            await pipe.execute()
        return verdict
