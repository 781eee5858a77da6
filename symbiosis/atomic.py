"""Atomic file writes: a partial write never replaces a good output.

Every output is written to a temporary file in the destination folder and moved into place with
``os.replace`` (atomic on POSIX and Windows when both paths are on one file system).
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success it replaces ``path``, on error it is removed."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{target.name}.", suffix=target.suffix or ".tmp",
                                         dir=target.parent)
    os.close(handle)
    os.unlink(temporary)  # writers such as pyogrio want to create the file themselves
    temp_path = Path(temporary)
    try:
        yield temp_path
        os.replace(temp_path, target)
    finally:
        if temp_path.exists():
            temp_path.unlink()


def write_atomic(path: str | Path, write: Callable[[Path], object]) -> Path:
    """Call ``write(tmp_path)`` and move the result to ``path`` only if it succeeded."""
    with atomic_path(path) as temporary:
        write(temporary)
    return Path(path)


def write_text_atomic(path: str | Path, text: str) -> Path:
    return write_atomic(path, lambda p: p.write_text(text, encoding="utf-8"))
