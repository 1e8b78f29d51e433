"""Atomic file writes: a reader sees the old file or the new one, never half of either.

The data goes to a temporary name beside the target, is flushed to disk and renamed over
the target (``os.replace`` is atomic on POSIX and Windows); then the folder itself is
synced, because the rename is only durable once the folder's entry is on disk. Imports
only the standard library, so every layer (checkpoints, figures, pages) can use it.
"""

from __future__ import annotations

import os
from pathlib import Path


def write_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that a reader sees the old file or the new, never half."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    fsync_dir(path.parent)


def fsync_dir(path: Path) -> None:
    """Flush folder ``path``'s entries to disk; a no-op where folders cannot be opened."""
    # the rename itself is only durable once the folder's entry is on disk
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
