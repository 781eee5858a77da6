"""Atomic file writes: a partial write never replaces a good output, and a folder is one run's set.

Every output is written to a temporary file in the destination folder and moved into place with
``os.replace`` (atomic on POSIX and Windows when both paths are on one file system). A command's whole
output folder is built in a staging folder beside it and swapped into place (:func:`output_folder`), with a
``manifest.json`` that :func:`verify_outputs` checks (docs/outputs.md).
"""

from __future__ import annotations

import contextlib
import datetime
import hashlib
import importlib.metadata
import json
import os
import shutil
import sys
import tempfile
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from symbiosis.errors import SymbiosisError


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


# --------------------------------------------------------------------------------------------------
# whole output folders: staged, swapped into place, described by a manifest
# --------------------------------------------------------------------------------------------------

#: The file, in every output folder, that lists the run and the checksum of every other file.
MANIFEST = "manifest.json"


class OutputsError(SymbiosisError):
    """An output folder cannot be written, or what is in it is not one run's complete set of files."""


def check_output_folder(out: str | Path) -> Path:
    """Refuse, before any work, an ``--out`` that cannot become an output folder.

    ``out`` may be missing, an empty folder, or a folder an earlier run wrote (it holds ``manifest.json``):
    that one is replaced whole. A file, a folder of someone else's files, the working folder itself (or one
    above it), or a place that cannot be written is refused with the reason.
    """
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise OutputsError(f"--out {out} is a file, not a folder: give a folder for the outputs")
    resolved = out.resolve()
    if Path.cwd().resolve().is_relative_to(resolved):
        raise OutputsError(f"--out {out} is the working folder or holds it: give a folder of its own, "
                           "which each run replaces whole")
    if out.is_dir() and not (out / MANIFEST).is_file() and any(out.iterdir()):
        raise OutputsError(f"--out {out} holds files that symbiosis did not write (no {MANIFEST}); each run "
                           "replaces its output folder whole, so give a new or empty folder, or delete this one")
    existing = resolved.parent
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        raise OutputsError(f"--out {out}: {existing} is a file, so no folder can be made below it")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise OutputsError(f"--out {out}: {existing} cannot be written (permission denied)")
    return out


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _files(folder: Path) -> list[str]:
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()
                  and p.relative_to(folder).as_posix() != MANIFEST)


def _package_version() -> str:
    try:
        return importlib.metadata.version("symbiosis")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).isoformat(timespec="milliseconds")


def write_manifest(folder: Path, *, run_id: str, started: str, command: list[str]) -> Path:
    """``manifest.json``: the run's id, start and finish times, command, package version and the sha256 of
    every other file in ``folder`` (paths relative to it, ``/``-separated)."""
    record = {"run_id": run_id, "started": started, "finished": _now(), "command": command,
              "package": "symbiosis", "version": _package_version(),
              "files": {name: _sha256(folder / name) for name in _files(folder)}}
    return write_text_atomic(folder / MANIFEST, json.dumps(record, indent=2) + "\n")


def verify_outputs(folder: str | Path) -> dict[str, Any]:
    """Check that ``folder`` is one run's complete, unchanged set of outputs; returns its manifest.

    Raises :class:`OutputsError` listing every file that is missing, changed (sha256) or not of the run.
    """
    folder = Path(folder)
    try:
        manifest = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
        files = dict(manifest["files"])
    except FileNotFoundError:
        raise OutputsError(f"{folder} has no {MANIFEST}: not a complete symbiosis output folder") from None
    except (ValueError, KeyError, TypeError) as exc:
        raise OutputsError(f"{folder / MANIFEST} cannot be read ({exc}): the folder cannot be verified") from None
    problems = []
    for name, digest in sorted(files.items()):
        path = folder / name
        if not path.is_file():
            problems.append(f"{name}: missing")
        elif _sha256(path) != digest:
            problems.append(f"{name}: changed since run {manifest.get('run_id')} wrote it")
    problems += [f"{name}: not written by run {manifest.get('run_id')}" for name in _files(folder) if name not in files]
    if problems:
        listing = "\n".join(f"  - {p}" for p in problems)
        raise OutputsError(f"{folder} is not the complete output of one run:\n{listing}")
    return dict(manifest)


@contextlib.contextmanager
def _locked(lock_path: Path) -> Iterator[None]:
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows: renames are still atomic, only not serialised
        yield
        return
    with lock_path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


@contextlib.contextmanager
def output_folder(out: str | Path, *, command: list[str] | None = None) -> Iterator[Path]:
    """Yield a fresh staging folder beside ``out``; on success it replaces ``out`` whole.

    Everything is written into ``.NAME.staging-ID`` in the same parent folder, ``manifest.json`` last; then,
    under a lock (``.NAME.lock``), the old folder is renamed aside, the staging folder renamed to ``out`` and
    the old one deleted. A reader sees the whole old set or the whole new set, never a mix; of two runs into
    one ``out`` the last to finish wins whole. On error the staging folder is removed and ``out`` untouched.
    """
    out = check_output_folder(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    run_id = str(uuid.uuid4())
    started = _now()
    staging = out.parent / f".{out.name}.staging-{run_id}"
    staging.mkdir()
    try:
        yield staging
        write_manifest(staging, run_id=run_id, started=started, command=list(command or sys.argv))
        old: Path | None = None
        with _locked(out.parent / f".{out.name}.lock"):
            check_output_folder(out)  # another program may have put files there while this one worked
            if out.exists():
                old = out.parent / f".{out.name}.old-{run_id}"
                os.rename(out, old)
            os.rename(staging, out)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)


def in_folder(out: str | Path, staging: Path, written: dict[str, Path]) -> dict[str, Path]:
    """The paths of ``written`` (inside ``staging``) as they are once the staging folder became ``out``."""
    return {name: Path(out) / path.relative_to(staging) for name, path in written.items()}
