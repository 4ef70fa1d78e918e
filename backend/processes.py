"""Is a process still ours and alive? Pid checks shared by the run supervisor and the download driver.

A pid is remembered with its start time, so a pid the system reused for another program is never
mistaken for the worker or download that once had it; a zombie (exited, not reaped) counts as ended.
"""

from __future__ import annotations

import os
from pathlib import Path


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
