"""Upload limits: the 20 MB request-body cap (api/app.py) and oversized rows/fields in lead files.

A body over the cap must be refused with 413 and the documented error body whether or not the client
declares its length; a file with an oversized field must end as a reported failure or a per-line
error, never a 500.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.app import MAX_BODY_BYTES
from core.models import Role

pytestmark = pytest.mark.postgres
ERROR_KEYS = {"error_id", "message", "details"}
BOUNDARY = "hardening-boundary"


@pytest.fixture
def admin(role_headers: dict[Role, dict[str, str]]) -> dict[str, str]:
    return role_headers[Role.ADMIN]


@pytest.fixture
def import_url(app_client: TestClient, admin: dict[str, str]) -> str:
    campaign = app_client.post(
        "/api/v1/campaigns", json={"name": "limits", "caller_id_number": "4001234567"}, headers=admin
    )
    assert campaign.status_code == 201, campaign.text
    cid = campaign.json()["id"]
    lead_list = app_client.post(f"/api/v1/campaigns/{cid}/lists", json={"name": "l"}, headers=admin)
    assert lead_list.status_code == 201, lead_list.text
    return f"/api/v1/campaigns/{cid}/lists/{lead_list.json()['id']}/imports"


def multipart(content: bytes, filename: str = "leads.csv") -> bytes:
    head = (
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="{filename}"\r\n'
        "Content-Type: text/csv\r\n\r\n"
    ).encode()
    return head + content + f"\r\n--{BOUNDARY}--\r\n".encode()


MULTIPART = {"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"}


def stream(body: bytes, chunk: int = 1024 * 1024) -> Iterator[bytes]:
    """The body as a generator: httpx then sends it chunked, without a Content-Length."""
    for start in range(0, len(body), chunk):
        yield body[start : start + chunk]


def assert_error(response: Any, status: int, error_id: str | None = None) -> None:
    assert response.status_code == status, response.text[:500]
    body = response.json()
    assert set(body) == ERROR_KEYS, body
    if error_id is not None:
        assert body["error_id"] == error_id


def oversized_csv() -> bytes:
    row = b"13812345678,name\n"
    return b"phone,name\n" + row * (MAX_BODY_BYTES // len(row) + 1)


def test_declared_oversized_body_is_refused_with_413(
    app_client: TestClient, admin: dict[str, str], import_url: str
) -> None:
    body = multipart(oversized_csv())
    assert len(body) > MAX_BODY_BYTES
    response = app_client.post(import_url, content=body, headers={**admin, **MULTIPART})
    assert_error(response, 413, "payload_too_large")


@pytest.mark.parametrize("length", ["abc", "-1", "1e9", " 5"])
def test_malformed_content_length_is_refused(
    app_client: TestClient, admin: dict[str, str], length: str
) -> None:
    # httpx would recompute a bad header; the ASGI scope is what the middleware reads.
    response = app_client.post("/api/v1/auth/login", content=b"{}", headers={"Content-Length": length})
    assert response.status_code in (400, 413), response.text
    assert set(response.json()) == ERROR_KEYS


def test_streamed_oversized_body_is_refused_with_413(
    app_client: TestClient, admin: dict[str, str], import_url: str
) -> None:
    response = app_client.post(
        import_url, content=stream(multipart(oversized_csv())), headers={**admin, **MULTIPART}
    )
    assert_error(response, 413, "payload_too_large")


def test_streamed_oversized_json_is_refused_with_413(app_client: TestClient) -> None:
    body = b'{"username": "a", "password": "' + b"x" * (MAX_BODY_BYTES + 1) + b'"}'
    response = app_client.post(
        "/api/v1/auth/login", content=stream(body), headers={"Content-Type": "application/json"}
    )
    assert_error(response, 413, "payload_too_large")


def run_import(client: TestClient, url: str, admin: dict[str, str], csv: bytes) -> dict[str, Any]:
    started = client.post(url, files={"file": ("leads.csv", csv, "text/csv")}, headers=admin)
    assert started.status_code == 202, started.text[:500]
    job = started.json()
    polled = client.get(url.rsplit("/lists/", 1)[0] + f"/imports/{job['id']}", headers=admin)
    assert polled.status_code == 200
    return polled.json()


def test_oversized_field_is_a_per_line_error_and_the_rest_is_imported(
    app_client: TestClient, admin: dict[str, str], import_url: str
) -> None:
    csv = b"phone,name\n13811112222,ok\n13811113333," + b"x" * 5000 + b"\n13811114444,fine\n"
    job = run_import(app_client, import_url, admin, csv)
    assert job["status"] == "done" and job["imported"] == 2 and job["rejected"] == 1
    assert [(e["line"], e["code"]) for e in job["errors"]] == [(3, "field_too_long")]


def test_field_over_the_csv_limit_fails_the_job_with_its_line_not_a_500(
    app_client: TestClient, admin: dict[str, str], import_url: str
) -> None:
    csv = b"phone,name\n13811112222,ok\n13811113333," + b"x" * 200_000 + b"\n"
    job = run_import(app_client, import_url, admin, csv)
    assert job["status"] == "failed"
    assert "line 3" in job["failure"]


def test_a_huge_row_of_many_cells_is_reported(
    app_client: TestClient, admin: dict[str, str], import_url: str
) -> None:
    csv = b"phone,name\n13811112222,ok\n13811113333" + b",x" * 50_000 + b"\n13811114444,fine\n"
    job = run_import(app_client, import_url, admin, csv)
    assert job["status"] == "done" and job["imported"] == 2
    assert [(e["line"], e["code"]) for e in job["errors"]] == [(3, "too_many_cells")]


def test_rule_import_with_an_oversized_field_is_not_a_500(
    app_client: TestClient, admin: dict[str, str]
) -> None:
    csv = b"kind,value,reason\nexact,8613800000000,ok\nexact,8613800000001," + b"x" * 70_000 + b"\n"
    response = app_client.post(
        "/api/v1/screening/rules/import", files={"file": ("rules.csv", csv, "text/csv")}, headers=admin
    )
    assert response.status_code < 500, response.text[:300]


def test_nul_in_a_lead_cell_is_reported_and_good_rows_are_imported(
    app_client: TestClient, admin: dict[str, str], import_url: str
) -> None:
    csv = b"phone,name\n13811112222,ok\n13811113333,a\x00b\n13811114444,fine\n"
    started = app_client.post(import_url, files={"file": ("leads.csv", csv, "text/csv")}, headers=admin)
    assert started.status_code == 202, started.text[:300]
    job = started.json()
    assert job["status"] == "done" and job["imported"] >= 2
