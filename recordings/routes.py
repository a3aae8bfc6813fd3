"""HTTP in: recording metadata and seekable playback (HTTP Range), every listen audited."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response, StreamingResponse
from pydantic import BaseModel, ConfigDict

from api.deps import AnyUserDep, SessionDep
from core import audit
from core.errors import NotFound, PermissionDenied, ValidationFailed
from dialer.models import Call
from recordings.access import UnsatisfiableRange, may_listen, parse_range
from recordings.models import Recording
from recordings.storage import InvalidStorageKey, RecordingStorage

router = APIRouter(prefix="/recordings", tags=["recordings"])
CHUNK = 64 * 1024


class RecordingOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    call_id: int | None
    content_type: str
    status: str
    duration_s: float
    metrics: dict[str, Any]
    legal_hold: bool


def _authorised_recording(session: Any, principal: Any, recording_id: int) -> Recording:
    recording = session.get(Recording, recording_id)
    if recording is None:
        raise NotFound(f"recording {recording_id} not found")
    call = session.get(Call, recording.call_id) if recording.call_id is not None else None
    if not may_listen(
        role=principal.role, user_id=principal.user_id, call_agent_id=call.agent_user_id if call else None
    ):
        # Same answer as for a missing recording would leak less, but agents need to know why.
        raise PermissionDenied("agents may only access recordings of their own calls")
    return recording


@router.get("/{recording_id}", response_model=RecordingOut)
def get_recording(recording_id: int, principal: AnyUserDep, session: SessionDep) -> RecordingOut:
    return RecordingOut.model_validate(_authorised_recording(session, principal, recording_id))


@router.get("/{recording_id}/audio")
def play_recording(
    recording_id: int, principal: AnyUserDep, session: SessionDep, request: Request
) -> Response:
    """Stream the audio; honours `Range` so the browser player can seek."""
    recording = _authorised_recording(session, principal, recording_id)
    storage: RecordingStorage = request.app.state.recording_storage
    try:
        size = storage.size(recording.storage_key)
    except (FileNotFoundError, InvalidStorageKey) as exc:
        raise NotFound(f"audio of recording {recording_id} is not available") from exc
    try:
        byte_range = parse_range(request.headers.get("range"), size)
    except UnsatisfiableRange as exc:
        raise ValidationFailed(
            "requested range is outside the file", error_id="range_not_satisfiable", details={"size": size}
        ) from exc
    if byte_range is None or byte_range.start == 0:
        # One audit row per listen, not per seek: players issue many Range requests.
        audit.record(
            session,
            principal.actor,
            action="recording.listen",
            entity_type="recording",
            entity_id=recording.id,
            details={"call_id": recording.call_id},
        )
        session.commit()
    start, length = (byte_range.start, byte_range.length) if byte_range else (0, size)

    def body() -> Iterator[bytes]:
        with storage.open(recording.storage_key) as fh:
            fh.seek(start)
            remaining = length
            while remaining > 0:
                chunk = fh.read(min(CHUNK, remaining))
                if not chunk:
                    return
                remaining -= len(chunk)
                yield chunk

    headers = {"Accept-Ranges": "bytes", "Content-Length": str(length), "Cache-Control": "private, no-store"}
    if byte_range is not None:
        headers["Content-Range"] = f"bytes {byte_range.start}-{byte_range.end}/{size}"
    return StreamingResponse(
        body(), status_code=206 if byte_range else 200, media_type=recording.content_type, headers=headers
    )
