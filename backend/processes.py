"""Background job processes: started, and asked whether they are still ours and alive. Shared by the run
supervisor and the download and evaluation drivers.

A pid is remembered with its start time, so a pid the system reused for another program is never
mistaken for the worker or download that once had it; a zombie (exited, not reaped) counts as ended.

    proc = spawn_job("backend.models.fetch", download_id, workspace.root, "downloads")  # OSError if it can't
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent  # the repository: `python -m backend...` runs from here


def spawn_job(module: str, job_id: int, workspace_root: Path, logs: str) -> subprocess.Popen:
    """`python -m MODULE JOB_ID --workspace ROOT` in its own session (it outlives the app that started it),
    its output appended to ROOT/LOGS/JOB_ID.log. An argument list, never a shell."""
    folder = Path(workspace_root) / logs
    folder.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", module, str(job_id), "--workspace", str(workspace_root)]
    with open(folder / f"{job_id}.log", "ab") as out:
        return subprocess.Popen(
            cmd, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True
        )


def kill_group(pid: int, sig: int = signal.SIGKILL) -> None:
    """Signal a job's whole process group (it started its own session); one already gone is left alone."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)


def process_start_time(pid: int) -> float | None:
    """Start time of `pid` in clock ticks since boot (Linux), so a reused pid is never mistaken for ours."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return float(fields[19])
    except (OSError, IndexError, ValueError):
        return None


def is_alive(pid: int | None, started: float | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie (exited, not yet reaped) is not alive
        if Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z":
            return False
    except OSError:
        pass
    return started is None or process_start_time(pid) == started
