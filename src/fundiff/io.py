"""File helpers: every output is written under a temporary name and renamed into place."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike):
    """Yield a temporary sibling path; rename it to `path` only if the block succeeds.

    A crash or kill inside the block leaves nothing under the final name, so a rerun never
    mistakes a half-written file for a finished one. The temporary keeps the suffix, so
    libraries that pick a format from the extension still work.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.tmp{os.getpid()}{path.suffix}")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def save_torch(obj, path: str | os.PathLike) -> None:
    """torch.save, atomically and byte-reproducibly.

    torch names the records inside its zip archive after the file it writes to; saving through
    an open file object instead keeps the temporary name (which holds a PID) out of the bytes,
    so the same content always gives the same file.
    """
    import torch

    with atomic_path(path) as tmp, open(tmp, "wb") as handle:
        torch.save(obj, handle)
