"""Recording playback: role rules, HTTP Range seeking, listen audit, path traversal refused."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from api.app import create_app
from config.settings import Settings
from core.clock import FixedClock
from core.db import unit_of_work
from core.models import Role
from dialer.models import Call
from recordings.models import Recording
from recordings.storage import LocalStorage
from tests.asterisk_fixtures import FIXTURE_DIR
from tests.conftest import PASSWORD

SAMPLE = FIXTURE_DIR / "recording_sample.wav"


@pytest.fixture
def client(
    settings: Settings, session_factory: sessionmaker[Session], clock: FixedClock, tmp_path: Path
) -> Iterator[TestClient]:
    storage = LocalStorage(tmp_path)
    storage.put("2026/11/22/out-1000.wav", SAMPLE)
    app = create_app(settings, session_factory=session_factory, clock=clock, recording_storage=storage)
    with TestClient(app, raise_server_exceptions=False) as c:
        yield c


@pytest.fixture
def setup(
    client: TestClient, make_user: Callable[..., int], session_factory: sessionmaker[Session]
) -> dict[str, object]:
    owner = make_user("agent.owner", Role.AGENT)
    make_user("agent.other", Role.AGENT)
    make_user("qa.one", Role.QA)
    with unit_of_work(session_factory) as session:
        call = Call(direction="outbound", agent_user_id=owner, to_number="+8613812345678")
        session.add(call)
        session.flush()
        good = Recording(call_id=call.id, storage_key="2026/11/22/out-1000.wav", status="processed")
        evil = Recording(call_id=call.id, storage_key="../../etc/passwd", status="processed")
        session.add_all([good, evil])
        session.flush()
        ids = {"good": good.id, "evil": evil.id}

    def headers(user: str) -> dict[str, str]:
        token = client.post("/api/v1/auth/login", json={"username": user, "password": PASSWORD}).json()
        client.cookies.clear()
        return {"Authorization": f"Bearer {token['access_token']}"}

    return {"ids": ids, "headers": headers}


def test_owner_and_qa_hear_other_agent_does_not(client: TestClient, setup: dict[str, object]) -> None:
    ids, headers = setup["ids"], setup["headers"]
    rid = ids["good"]  # type: ignore[index]
    full = client.get(f"/api/v1/recordings/{rid}/audio", headers=headers("agent.owner"))  # type: ignore[operator]
    assert full.status_code == 200, full.text
    assert full.content == SAMPLE.read_bytes()
    assert full.headers["accept-ranges"] == "bytes"
    qa = client.get(f"/api/v1/recordings/{rid}/audio", headers=headers("qa.one"))  # type: ignore[operator]
    assert qa.status_code == 200
    other = client.get(f"/api/v1/recordings/{rid}/audio", headers=headers("agent.other"))  # type: ignore[operator]
    assert other.status_code == 403
    meta = client.get(f"/api/v1/recordings/{rid}", headers=headers("agent.other"))  # type: ignore[operator]
    assert meta.status_code == 403


def test_range_requests(client: TestClient, setup: dict[str, object]) -> None:
    rid, h = setup["ids"]["good"], setup["headers"]("qa.one")  # type: ignore[index, operator]
    data = SAMPLE.read_bytes()
    part = client.get(f"/api/v1/recordings/{rid}/audio", headers={**h, "Range": "bytes=100-199"})
    assert part.status_code == 206 and part.content == data[100:200]
    assert part.headers["content-range"] == f"bytes 100-199/{len(data)}"
    tail = client.get(f"/api/v1/recordings/{rid}/audio", headers={**h, "Range": "bytes=-44"})
    assert tail.status_code == 206 and tail.content == data[-44:]
    open_end = client.get(
        f"/api/v1/recordings/{rid}/audio", headers={**h, "Range": f"bytes={len(data) - 10}-"}
    )
    assert open_end.content == data[-10:]
    beyond = client.get(f"/api/v1/recordings/{rid}/audio", headers={**h, "Range": f"bytes={len(data)}-"})
    assert beyond.status_code == 416 and beyond.json()["error_id"] == "range_not_satisfiable"


def test_listens_are_audited_once_per_listen(
    client: TestClient, setup: dict[str, object], make_user: Callable[..., int]
) -> None:
    rid, h = setup["ids"]["good"], setup["headers"]("qa.one")  # type: ignore[index, operator]
    client.get(f"/api/v1/recordings/{rid}/audio", headers=h)
    client.get(f"/api/v1/recordings/{rid}/audio", headers={**h, "Range": "bytes=1000-"})  # a seek
    make_user("root", Role.ADMIN)
    admin = setup["headers"]("root")  # type: ignore[operator]
    log = client.get("/api/v1/audit-log", headers=admin, params={"action": "recording.listen"}).json()
    assert log["total"] == 1 and log["items"][0]["actor_label"] == "user:qa.one"


def test_traversal_key_is_refused(client: TestClient, setup: dict[str, object]) -> None:
    rid, h = setup["ids"]["evil"], setup["headers"]("qa.one")  # type: ignore[index, operator]
    resp = client.get(f"/api/v1/recordings/{rid}/audio", headers=h)
    assert resp.status_code == 404 and b"root:" not in resp.content
