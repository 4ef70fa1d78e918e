"""Files in a run folder that several modules read: the worker's log, checkpoints and folder sizes."""

from __future__ import annotations

import os
from pathlib import Path

LOG_FILE = "log.txt"
WRITTEN_LAST = "trainer_state.json"  # the Trainer saves this last in a checkpoint folder


def checkpoint_steps(folder: Path, complete_only: bool = True) -> list[tuple[int, Path]]:
    """(step, path) of the checkpoint-N folders in `folder`, oldest first; by default only those the Trainer
    finished writing (a worker killed while saving leaves a folder without WRITTEN_LAST)."""
    found = sorted(
        (int(p.name.rsplit("-", 1)[-1]), p) for p in folder.glob("checkpoint-*") if p.name.rsplit("-", 1)[-1].isdigit()
    )
    return [(step, p) for step, p in found if not complete_only or (p / WRITTEN_LAST).is_file()]


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
