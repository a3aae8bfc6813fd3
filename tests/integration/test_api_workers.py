"""`callcenter api --workers 2`: several processes on one socket, answering keep-alive requests at once.

uvicorn binds the shared socket with proto 0 and asyncio then leaves Nagle on for every accepted
connection (uvicorn#3149): each keep-alive response after the first waited ~40 ms for the client's
delayed ACK (bench/api_load.py measured 56 ms a request instead of 11). The command sets TCP_NODELAY on
the listener (uvloop, when installed, also sets it per connection); this test runs the real command and
times keep-alive requests on one connection.
"""

from __future__ import annotations

import os
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import TEST_SECRET

ROOT = Path(__file__).resolve().parents[2]
DELAYED_ACK_MS = 40.0  # Linux's minimum delayed-ACK timeout; a Nagle stall costs at least this


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def api_with_two_workers(tmp_path: Path) -> Iterator[str]:
    port = _free_port()
    env = dict(
        os.environ,
        CC_ENVIRONMENT="test",
        CC_DATABASE_URL=f"sqlite:///{tmp_path / 'api.db'}",
        CC_SECRET_KEY=TEST_SECRET,
        CC_RECORDINGS_DIR=str(tmp_path / "recordings"),
    )
    log = (tmp_path / "api.log").open("wb")
    server = subprocess.Popen(
        [sys.executable, "-m", "core.cli", "api", "--port", str(port), "--workers", "2"],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{base}/api/v1/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if server.poll() is not None or time.monotonic() > deadline:
                log.flush()
                pytest.fail(f"api --workers 2 did not start:\n{(tmp_path / 'api.log').read_text()[-3000:]}")
            time.sleep(0.2)
        yield base
    finally:
        server.terminate()
        server.wait(timeout=20)
        log.close()


def test_keep_alive_requests_are_not_held_by_nagle(api_with_two_workers: str) -> None:
    with httpx.Client(base_url=api_with_two_workers, timeout=5) as client:
        client.get("/api/v1/health").raise_for_status()  # the first request of a connection never stalls
        times = []
        for _ in range(15):
            started = time.perf_counter()
            client.get("/api/v1/health").raise_for_status()
            times.append((time.perf_counter() - started) * 1000)
    assert statistics.median(times) < DELAYED_ACK_MS * 0.75, f"keep-alive requests took {times} ms"
