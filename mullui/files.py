"""Files written whole or not at all, and JSON read back: what every state file of
mullui (records, cursors, trust, indexes) is written with."""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

from mullui.errors import MulluiError


def atomic_write(path: Path, data: bytes, *, mode: int = 0o600, durable: bool = True) -> None:
    """Write ``data`` to ``path`` so a reader sees the old or the new file, never half.

    temp file in the same directory + fsync + rename + fsync of the directory.
    ``durable=False`` leaves the fsyncs out: for derived files rebuilt from state anyway
    (a crash may lose the newest content, never show half of it to a running reader).
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        try:
            os.fchmod(fd, mode)
            view = memoryview(data)
            while view:
                n = os.write(fd, view)
                view = view[n:]
            if durable:
                os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except OSError as e:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise MulluiError(
            f"cannot write {path}: {e.strerror or e} — free space or fix permissions"
        ) from e
    if not durable:
        return
    dfd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dfd)
    finally:
        os.close(dfd)


def atomic_write_json(path: Path, obj: Any) -> None:
    atomic_write(path, json.dumps(obj, ensure_ascii=False, indent=1, default=str).encode())


def read_json(path: Path) -> Any:
    """Parsed JSON, or None when the file is missing; raises ValueError when corrupt."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return None
    return json.loads(raw)
