"""What an idle Tuneboard costs: CPU time of `python app.py` and of `supervise` with nothing queued.

    .venv/bin/python bench/idle_cpu.py [--seconds 60] [--settle 20] [--which app,supervise] [--tree DIR]

Each process starts on a fresh workspace (no runs, no searches, no downloads; the bundled models
shared from ./workspace/models so nothing converts), no browser is opened, and after `--settle`
seconds its user+system CPU time (utime+stime of /proc/PID/stat, all threads) is read twice,
`--seconds` apart. Prints the share of one core it used meanwhile. `--tree` runs another checkout's
code (`git archive COMMIT | tar -x -C DIR`: the numbers before a change).
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime, stime (fields 14 and 15)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def measure(which: str, seconds: float, settle: float, tree: Path = ROOT) -> float:
    workspace = Path(tempfile.mkdtemp(prefix="tb-idle-"))
    env = {**os.environ, "TUNEBOARD_WORKSPACE": str(workspace), "TUNEBOARD_MODELS_DIR": str(ROOT / "workspace/models")}
    if which == "app":
        cmd = [sys.executable, "app.py", "--port", str(free_port())]
    else:
        cmd = [sys.executable, "-m", "backend.cli", "supervise"]
    proc = subprocess.Popen(cmd, cwd=tree, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        time.sleep(settle)
        if proc.poll() is not None:
            raise SystemExit(f"{which} exited with {proc.returncode}")
        before = cpu_seconds(proc.pid)
        time.sleep(seconds)
        used = cpu_seconds(proc.pid) - before
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        shutil.rmtree(workspace, ignore_errors=True)
    return 100 * used / seconds


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seconds", type=float, default=60)
    p.add_argument("--settle", type=float, default=20)
    p.add_argument("--which", default="app,supervise")
    p.add_argument("--tree", type=Path, default=ROOT, help="the checkout whose app.py runs (default this one)")
    args = p.parse_args()
    for which in args.which.split(","):
        share = measure(which, args.seconds, args.settle, args.tree)
        print(f"{which}: {share:.2f}% of one core over {args.seconds:.0f} s idle", flush=True)


if __name__ == "__main__":
    main()
