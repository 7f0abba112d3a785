"""The watched folder: which files are ready, and moving a file aside once it is dealt with."""

from __future__ import annotations

import fnmatch
import os
from pathlib import Path


def ready_files(folder: Path, pattern: str, settle_s: float, now_s: float) -> list[Path]:
    """Regular files in ``folder`` (not below it) matching ``pattern``, not hidden (``.name``: a
    temporary name while being written) and unmodified for ``settle_s`` s at ``now_s`` (epoch s),
    oldest first."""
    ready: list[tuple[float, str]] = []
    with os.scandir(folder) as entries:
        for entry in entries:
            if entry.name.startswith(".") or not fnmatch.fnmatch(entry.name, pattern):
                continue
            if not entry.is_file(follow_symlinks=False):
                continue
            mtime = entry.stat(follow_symlinks=False).st_mtime
            if mtime <= now_s - settle_s:
                ready.append((mtime, entry.name))
    return [folder / name for _, name in sorted(ready)]


def move_into(path: Path, folder: Path) -> Path:
    """Move ``path`` into ``folder`` (created if needed), adding ``-1``, ``-2`` … to the stem if the
    name is taken there; returns the new path."""
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / path.name
    n = 0
    while target.exists():
        n += 1
        target = folder / f"{path.stem}-{n}{path.suffix}"
    path.rename(target)
    return target


def write_note(moved: Path, suffix: str, text: str) -> Path:
    """Write ``text`` next to a moved file as ``<name><suffix>`` (e.g. ``x.csv.error.txt``)."""
    note = moved.with_name(moved.name + suffix)
    note.write_text(text, encoding="utf-8")
    return note
