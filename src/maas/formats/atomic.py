"""Writes an exported file atomically: a temp file beside it, fsynced, then renamed over the target, so a
reader never sees half a model and a crash leaves the old file (or none)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def write_atomically(out: Path, data: bytes) -> Path:
    fd, part = tempfile.mkstemp(prefix=".maas-export-", dir=out.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(part, out)
    except BaseException:
        Path(part).unlink(missing_ok=True)
        raise
    return out
