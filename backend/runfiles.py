"""Files in a run folder that several modules read: the worker's log and folder sizes."""

from __future__ import annotations

import os
from pathlib import Path

LOG_FILE = "log.txt"


def dir_size(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def log_tail(run_dir: Path, lines: int = 30) -> str:
    path = run_dir / LOG_FILE
    if not path.is_file():
        return ""
    with open(path, "rb") as f:
        f.seek(0, os.SEEK_END)
        f.seek(max(0, f.tell() - 64_000))
        text = f.read().decode("utf-8", "replace")
    return "\n".join(text.splitlines()[-lines:])
