"""Where recording files live: a small `RecordingStorage` protocol and the local-disk implementation.

Keys are ours (e.g. ``2026/11/22/attempt-123.mp3``), but parts of them come from Asterisk channel
variables and Uniqueids, which a hostile caller can influence (see the fixtures'
``agi_hostile_callerid_*`` transcripts). So a key must match a strict pattern *and* its resolved path
must stay inside the root; either check alone has been bypassed in other products.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path
from typing import BinaryIO, Protocol

# Segments of letters, digits, dot, dash, underscore separated by single slashes; no segment may start
# with a dot (rules out "..", ".hidden"), no leading slash (absolute), no backslash, NUL or colon.
_KEY = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]{0,127}(?:/[A-Za-z0-9_-][A-Za-z0-9._-]{0,127}){0,7}")
MAX_KEY_LENGTH = 256  # the width of recording.storage_key


class InvalidStorageKey(ValueError):
    """A key that is not a plain relative path made of safe characters."""


class RecordingStorage(Protocol):
    """What processing, playback and retention need from a store (local disk, S3-compatible...)."""

    def put(self, key: str, src_path: Path) -> None:
        """Store the file at `src_path` under `key`, replacing what was there."""
        ...

    def open(self, key: str) -> BinaryIO:
        """Open the stored object for binary reading; raise FileNotFoundError if absent."""
        ...

    def size(self, key: str) -> int:
        """Size in bytes of the stored object; raise FileNotFoundError if absent."""
        ...

    def delete(self, key: str) -> bool:
        """Remove the object; True if something was removed."""
        ...

    def exists(self, key: str) -> bool:
        """True if an object is stored under `key`."""
        ...


def validate_key(key: str) -> str:
    """Return `key` unchanged if it is a safe relative storage key, else raise InvalidStorageKey."""
    if not isinstance(key, str) or not key or len(key) > MAX_KEY_LENGTH or _KEY.fullmatch(key) is None:
        raise InvalidStorageKey(f"invalid storage key {key!r}")
    return key


class LocalStorage:
    """Recordings as files under one root directory."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root).resolve()

    def _path(self, key: str) -> Path:
        validate_key(key)
        path = (self.root / key).resolve()
        # Belt and braces: a symlink planted inside the root could still point outside it.
        if not path.is_relative_to(self.root) or path == self.root:
            raise InvalidStorageKey(f"storage key {key!r} leaves the storage root")
        return path

    def put(self, key: str, src_path: Path) -> None:
        """Copy `src_path` in via a temp name and a rename, so readers never see half a file."""
        dest = self._path(key)
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.with_name(f".{dest.name}.part")
        try:
            shutil.copyfile(src_path, tmp)
            os.replace(tmp, dest)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise

    def open(self, key: str) -> BinaryIO:
        """Open the stored file for binary reading."""
        return self._path(key).open("rb")

    def size(self, key: str) -> int:
        """Size in bytes of the stored file."""
        return self._path(key).stat().st_size

    def delete(self, key: str) -> bool:
        """Remove the stored file; True if it existed."""
        try:
            self._path(key).unlink()
        except FileNotFoundError:
            return False
        return True

    def exists(self, key: str) -> bool:
        """True if a regular file is stored under `key`."""
        return self._path(key).is_file()
