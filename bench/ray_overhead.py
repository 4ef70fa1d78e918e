"""A run on a local Ray cluster vs the same run on this machine: submit-to-first-step and the time to the end.

    .venv/bin/python bench/ray_overhead.py [--steps 8] [--workers 1,2]

Starts a Ray head on 127.0.0.1 (`ray start --head --block --num-cpus 2`, in its own process group, killed
at the end), a fresh workspace and the tests' tiny 2-layer Llama. A supervisor ticks as in the app (1 s).
Runs, one after the other: a local run (one worker process), then a `ray` run with each --workers count
(Ray Train's TorchTrainer, 1 CPU per worker, DDP over gloo). For each it times, from create_run: the first
step written to the database, and the run's end. The overhead per run is the ray run's end minus the
local run's (same steps; with 2 workers each step also splits the batch over 2 processes).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.runs_first_step import tiny_model  # noqa: E402


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def ray_head(num_cpus: int = 2):
    from ray.job_submission import JobSubmissionClient

    temp = tempfile.mkdtemp(prefix="tbray", dir="/tmp")
    dashboard = free_port()
    env = {**os.environ, "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "RAY_USAGE_STATS_ENABLED": "0"}
    cmd = [str(Path(sys.executable).parent / "ray"), "start", "--head", "--block", "--node-ip-address", "127.0.0.1"]
    cmd += ["--dashboard-host", "127.0.0.1", "--port", str(free_port()), "--dashboard-port", str(dashboard)]
    cmd += ["--temp-dir", temp, "--num-cpus", str(num_cpus), "--include-dashboard", "true"]
    head = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, start_new_session=True)
    address = f"http://127.0.0.1:{dashboard}"
    try:
        t0 = time.monotonic()
        while True:
            try:
                JobSubmissionClient(address)
                break
            except Exception:
                if head.poll() is not None or time.monotonic() - t0 > 180:
                    raise RuntimeError("the Ray head did not start") from None
                time.sleep(0.5)
        print(f"ray head up in {time.monotonic() - t0:.1f} s at {address}", flush=True)
        yield address
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(head.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            head.wait(timeout=5)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(head.pid, signal.SIGKILL)
        shutil.rmtree(temp, ignore_errors=True)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=8)
    p.add_argument("--workers", default="1,2", help="ray runs to time, by their number of workers")
    args = p.parse_args()

    from backend.config import RunConfig
    from backend.data import import_file
    from backend.runs.queue import create_run, get_run
    from backend.runs.supervisor import Supervisor
    from backend.services import Services
    from tests.conftest import write_alpaca

    tmp = Path(tempfile.mkdtemp(prefix="tb-ray-bench-"))
    try:
        os.environ.setdefault("TUNEBOARD_MODELS_DIR", str(tmp / "models"))
        model = tiny_model(tmp / "tiny")
        with ray_head() as address:
            services = Services.open(tmp / "ws")
            import_file(services.database, services.workspace, write_alpaca(tmp / "d.json", n=32), name="d")
            os.environ["TUNEBOARD_RAY_ADDRESS"] = address  # create_run checks the cluster answers
            supervisor = Supervisor(services.database, services.workspace, ray=address)
            cfg = RunConfig(dataset="d", model=str(model), method="full", batch_size=2, max_steps=args.steps)
            rows = []
            plan = [("local", None)] + [("ray", int(n)) for n in args.workers.split(",")]
            for executor, workers in plan:
                cluster = {"workers": workers} if workers else None
                t0 = time.monotonic()
                run_id = create_run(services.database, services.workspace, cfg, executor=executor, cluster=cluster).id
                first = None
                while True:
                    supervisor.tick()
                    run = get_run(services.database, run_id)
                    if first is None and run.step >= 1:
                        first = time.monotonic() - t0
                    if run.status.finished:
                        break
                    time.sleep(0.2)
                end = time.monotonic() - t0
                label = f"{executor} ({workers or 1} worker{'s' if (workers or 1) > 1 else ''})"
                rows.append((label, first, end, run.status.value))
                print(f"{label:22s} first step {first:6.1f} s   end {end:6.1f} s   {run.status.value}", flush=True)
        local_end = rows[0][2]
        print("\n| run | submit to first step | submit to end | overhead vs local | status |\n|---|---|---|---|---|")
        for label, first, end, status in rows:
            print(f"| {label} | {first:.1f} s | {end:.1f} s | {end - local_end:+.1f} s | {status} |")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
