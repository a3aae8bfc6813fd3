"""Process-wide settings for the long-running commands (api, agi, dialer)."""

from __future__ import annotations

import gc


def freeze_startup_heap() -> None:
    """Put every object that exists after start-up (modules, the app, ORM mappers) out of the collector's
    way.

    A full collection walks every tracked object: about 220,000 once the API has started, one pause of
    134 ms measured in the API process, far beyond a request's budget (bench/api_load.py's p99
    outliers). `gc.freeze()` moves them to a permanent generation, so later full collections walk only
    what requests and calls leave behind (CPython `gc` docs).
    """
    gc.collect()
    gc.freeze()
