"""Runs on a Ray cluster (executor `ray`): submitted through Ray's Jobs API, watched, cancelled, reconciled.

A supervisor that knows a cluster (`app.py --ray ADDRESS`, `supervise --ray ADDRESS` or $TUNEBOARD_RAY_ADDRESS:
the Ray dashboard's address, http://HEAD:8265) hands each queued `ray` run to `RayExecutor.submit`: the run is
claimed and its job submitted; the job runs `python -m backend.runs.ray_train` (Ray Train's TorchTrainer, N
workers each running the run's worker). The submission id is recorded on the run (cluster_job_id) and the job's
metadata names the workspace and the run, so a restarted dashboard finds its jobs again: every tick lists the
cluster's jobs once and matches them to the running runs (`why_dead`).

    executor = RayExecutor(database, workspace, "http://127.0.0.1:8265", end=supervisor._end)
    executor.launch_queued()          # claim and submit every queued ray run
    executor.why_dead(run, now)       # None while its job lives (or is stopped after a cancel); else why it ended
"""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import shlex
import sys
import time
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import select, update

from backend.workspace import Workspace
from db import Database, Run, RunStatus
from db.models import as_utc, utcnow

log = logging.getLogger(__name__)

RAY = "ray"
ADDRESS_ENV = "TUNEBOARD_RAY_ADDRESS"
ADDRESS_FILE = "ray-address.txt"  # in the workspace: the cluster its supervisor submits to (for the CLI and UI)
RESOURCES_FILE = "cluster.json"  # in a run folder: its workers and the resources of each
INSTALL = "pip install -r requirements-cluster.txt"
CANCEL_GRACE = timedelta(seconds=15)  # workers stop at their next step; a job still running then is stopped
START_GRACE = timedelta(seconds=60)  # a submitted job missing from the cluster's list this long is lost
JOBS_MAX_AGE_S = 0.5  # one listing of the cluster's jobs serves all the runs of one tick
# Settings the job's processes need from the dashboard's environment (every TUNEBOARD_* is passed too).
FORWARD_ENV = ("DATABASE_URL", "HF_HOME", "HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE")
ROOT = Path(__file__).resolve().parents[2]


def installed() -> bool:
    return importlib.util.find_spec("ray") is not None


def require_ray(what: str = "--executor ray") -> None:
    if not installed():
        raise ValueError(f"{what} needs Ray (optional, Ray 2.60 with Ray Train), which is not installed: {INSTALL}")


def configured_address(workspace: Workspace) -> str | None:
    """$TUNEBOARD_RAY_ADDRESS, else the address this workspace's supervisor was started with (`--ray`)."""
    address = os.environ.get(ADDRESS_ENV, "").strip()
    if address:
        return address
    path = workspace.root / ADDRESS_FILE
    return path.read_text().strip() or None if path.is_file() else None


def announce(workspace: Workspace, address: str | None) -> None:
    """A supervisor records the cluster it submits to (None: it has none), for the CLI and UI of the workspace."""
    path = workspace.root / ADDRESS_FILE
    if address:
        path.write_text(address + "\n")
    else:
        path.unlink(missing_ok=True)


def client(address: str):
    """A Jobs API client of the cluster at `address`; ValueError saying what to do when it does not answer."""
    require_ray()
    from ray.job_submission import JobSubmissionClient

    try:
        return JobSubmissionClient(address)
    except Exception as e:  # requests' ConnectionError, a wrong scheme, ...: all mean "no cluster there"
        raise ValueError(
            f"the Ray cluster at {address} does not answer ({type(e).__name__}: {str(e)[:200]}); start it "
            f"(`ray start --head`) or give the dashboard's address, http://HEAD:8265, as ${ADDRESS_ENV} or --ray"
        ) from e


def cluster_settings(workspace: Workspace, given: dict[str, Any], cfg) -> dict[str, Any]:
    """Check a ray run's settings (`given`: workers, worker_cpus, worker_gpus; None for the default) before
    anything is queued: Ray installed, a cluster configured and answering, sane workers and resources for the
    RunConfig `cfg`. Returns what the run folder's cluster.json keeps."""
    require_ray()
    unknown = set(given) - {"workers", "worker_cpus", "worker_gpus"}
    if unknown:
        raise ValueError(f"unknown cluster setting(s): {', '.join(sorted(unknown))}")
    workers, cpus, gpus = (given.get(k) for k in ("workers", "worker_cpus", "worker_gpus"))
    settings = {
        "workers": 1 if workers is None else int(workers),
        "worker_cpus": 1.0 if cpus is None else float(cpus),
        "worker_gpus": 0.0 if gpus is None else float(gpus),
    }
    if settings["workers"] < 1:
        raise ValueError("--workers must be at least 1 (the run's Ray Train workers)")
    if settings["worker_cpus"] <= 0 or settings["worker_gpus"] < 0:
        raise ValueError("--worker-cpus must be above 0 and --worker-gpus 0 or more (Ray resources per worker)")
    if cfg.nproc != 1 or cfg.gpu_ids:
        raise ValueError("a Ray run trains in --workers N processes on the cluster: drop --nproc and GPU lists")
    if cfg.devices not in ("auto", "cpu", "cuda") or (cfg.devices == "cpu" and settings["worker_gpus"]):
        raise ValueError(
            f"setting 'devices': {cfg.devices} with --worker-gpus {settings['worker_gpus']:g}; on a Ray cluster "
            "each worker uses the GPUs Ray gives it: set --worker-gpus and leave --devices auto"
        )
    answering_address(workspace)
    return settings


def answering_address(workspace: Workspace) -> str:
    """The workspace's cluster address; ValueError saying what to do when none is configured or nothing
    answers there (checked before anything is queued)."""
    address = configured_address(workspace)
    if not address:
        raise ValueError(
            f"no Ray cluster is configured: set {ADDRESS_ENV}=http://HEAD:8265 (the Ray dashboard), or start "
            "the app with `app.py --ray ADDRESS` (or `python -m backend.cli supervise --ray ADDRESS`)"
        )
    client(address)  # refused now when nothing answers there
    return address


def write_resources(workspace: Workspace, run_id: int, settings: dict[str, Any]) -> None:
    folder = workspace.run_dir(run_id)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / RESOURCES_FILE).write_text(json.dumps(settings))


def read_resources(workspace: Workspace, run_id: int) -> dict[str, Any]:
    path = workspace.run_dir(run_id) / RESOURCES_FILE
    saved = json.loads(path.read_text()) if path.is_file() else {}
    return {"workers": 1, "worker_cpus": 1.0, "worker_gpus": 0.0, **saved}


class RayExecutor:
    """Submits, watches and stops the Ray jobs of one workspace's `ray` runs on the cluster at `address`."""

    def __init__(
        self, database: Database, workspace: Workspace, address: str, end: Callable[[int, RunStatus, str], None]
    ):
        require_ray("--ray")
        self.database, self.workspace, self.address, self._end = database, workspace, address, end
        self._client = None
        self._jobs_at, self._jobs = 0.0, None

    @property
    def client(self):
        if self._client is None:
            self._client = client(self.address)
        return self._client

    def launch_queued(self) -> bool:
        """Claim and submit every queued ray run (the cluster queues jobs it has no room for yet)."""
        with self.database.session() as s:
            queued = list(
                s.scalars(
                    select(Run.id)
                    .where(Run.status == RunStatus.queued, Run.executor == RAY, Run.download_id.is_(None))
                    .order_by(Run.priority.desc(), Run.id)
                )
            )
        for run_id in queued:
            self.submit(run_id)
        return bool(queued)

    def submit(self, run_id: int) -> bool:
        """Claim a queued ray run and submit its job; False when it was not ours to start."""
        try:
            jobs_api = self.client
        except ValueError as e:  # the cluster does not answer now: the run waits in the queue
            log.warning("run %s waits: %s", run_id, e)
            return False
        resources = read_resources(self.workspace, run_id)
        job_id = f"tuneboard-run-{run_id}-{uuid.uuid4().hex[:8]}"
        with self.database.session() as s:  # claim first, with the job id: a restart then knows what to look for
            claimed = s.execute(
                update(Run)
                .where(Run.id == run_id, Run.status == RunStatus.queued, Run.executor == RAY)
                .values(
                    status=RunStatus.running,
                    started_at=utcnow(),
                    heartbeat_at=utcnow(),
                    cluster_job_id=job_id,
                    workers=resources["workers"],
                    pid=None,
                )
            ).rowcount
        if not claimed:
            return False
        try:
            jobs_api.submit_job(
                entrypoint=shlex.join(self.entrypoint(run_id, resources)),
                submission_id=job_id,
                metadata={"tuneboard_workspace": str(self.workspace.root), "tuneboard_run": str(run_id)},
                runtime_env={"env_vars": job_env()},
            )
        except Exception as e:
            self._end(run_id, RunStatus.failed, f"its Ray job could not be submitted to {self.address}: {e}")
            return False
        log.info("run %s submitted to the Ray cluster at %s as %s", run_id, self.address, job_id)
        return True

    def entrypoint(self, run_id: int, resources: dict[str, Any]) -> list[str]:
        """The job's command: Ray Train's TorchTrainer with the run's workers (backend.runs.ray_train). The
        interpreter is this one (every node has Tuneboard at the same path) unless $TUNEBOARD_RAY_PYTHON says."""
        return [
            *(job_python(), "-m", "backend.runs.ray_train", str(run_id), "--workspace", str(self.workspace.root)),
            *("--workers", str(resources["workers"]), "--worker-cpus", f"{resources['worker_cpus']:g}"),
            *("--worker-gpus", f"{resources['worker_gpus']:g}"),
        ]

    # -- watching ------------------------------------------------------------------------------

    def jobs(self) -> dict[int, list] | None:
        """This workspace's jobs on the cluster by run id (its metadata), newest last; None when it does not answer."""
        if time.monotonic() - self._jobs_at < JOBS_MAX_AGE_S:
            return self._jobs
        try:
            listed = self.client.list_jobs()
        except Exception as e:
            log.warning("the Ray cluster at %s does not answer: %s", self.address, e)
            self._client, listed = None, None
        found: dict[int, list] | None = None
        if listed is not None:
            found = {}
            for job in sorted(listed, key=lambda j: j.start_time or 0):
                meta = job.metadata or {}
                if (
                    meta.get("tuneboard_workspace") == str(self.workspace.root)
                    and meta.get("tuneboard_run", "").isdigit()
                ):
                    found.setdefault(int(meta["tuneboard_run"]), []).append(job)
        self._jobs_at, self._jobs = time.monotonic(), found
        return found

    def why_dead(self, run: Run, now: datetime) -> str | None:
        """None while the run's job lives; else why the run ended (the supervisor marks it). A cancel request
        stops a job still running CANCEL_GRACE later (or still waiting for room on the cluster)."""
        jobs = self.jobs()
        if jobs is None:  # the cluster does not answer: its workers' heartbeat still tells
            return None
        mine = jobs.get(run.id, [])  # an earlier job of a resumed run is among them: the run names its own
        job = next((j for j in mine if j.submission_id == run.cluster_job_id), None)
        if job is None and mine and not run.cluster_job_id:  # claimed without an id (never here): its newest
            job = mine[-1]
        if job is None:
            started = as_utc(run.started_at)
            if started and now - started > START_GRACE:
                return f"its Ray job {run.cluster_job_id} is not on the cluster at {self.address} (restarted?)."
            return None
        if job.submission_id != run.cluster_job_id:  # found by its metadata (claimed by an earlier supervisor)
            with self.database.session() as s:
                s.execute(update(Run).where(Run.id == run.id).values(cluster_job_id=job.submission_id))
        if not job.status.is_terminal():
            asked = as_utc(run.cancel_requested_at)
            if asked and (job.status.value == "PENDING" or now - asked > CANCEL_GRACE):
                self.stop(job.submission_id)
                return f"cancelled; its Ray job {job.submission_id} was stopped."
            return None
        self.save_log(run.id, job.submission_id)
        return f"its Ray job {job.submission_id} ended {job.status.value}: {job.message or ''}".strip()

    def stop(self, job_id: str) -> None:
        try:
            self.client.stop_job(job_id)
        except Exception as e:
            log.warning("stopping Ray job %s failed: %s", job_id, e)

    def save_log(self, run_id: int, job_id: str) -> None:
        """The job's own log (Ray Train's driver and workers) into the run folder, as ray-job.txt."""
        try:
            text = self.client.get_job_logs(job_id)
        except Exception as e:
            log.warning("the log of Ray job %s could not be read: %s", job_id, e)
            return
        (self.workspace.run_dir(run_id) / JOB_LOG).write_text(text, encoding="utf-8")


JOB_LOG = "ray-job.txt"


def job_env() -> dict[str, str]:
    """What a job's processes need from this environment: every TUNEBOARD_* (not the cluster's address),
    the database and hub settings, and this checkout on PYTHONPATH."""
    env = {k: v for k, v in os.environ.items() if k.startswith("TUNEBOARD_") or k in FORWARD_ENV}
    env.pop(ADDRESS_ENV, None)
    return {**env, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}


def job_python() -> str:
    """The interpreter a job runs: this one (every node has Tuneboard at the same path) unless
    $TUNEBOARD_RAY_PYTHON names another."""
    return os.environ.get("TUNEBOARD_RAY_PYTHON") or sys.executable


def job_log_tail(workspace: Workspace, run: Run, lines: int = 30) -> str:
    """The last lines of a ray run's job log: the copy saved when it ended, else the cluster's (asked over the
    Jobs REST API with a short timeout: the Runs page asks every 2 s and must not hang on a silent cluster)."""
    import urllib.parse
    import urllib.request

    text = ""
    path = workspace.run_dir(run.id) / JOB_LOG
    address = configured_address(workspace)
    if run.cluster_job_id and address and not (run.status.finished and path.is_file()):
        url = f"{address.rstrip('/')}/api/jobs/{urllib.parse.quote(run.cluster_job_id)}/logs"
        try:
            with urllib.request.urlopen(url, timeout=3) as response:
                text = json.load(response).get("logs") or ""
        except Exception:
            text = ""
    if not text and path.is_file():
        text = path.read_text(encoding="utf-8", errors="replace")
    return "\n".join(text.splitlines()[-lines:])


def cluster_resources(address: str, timeout: float = 3.0) -> dict[str, float] | None:
    """Free and total CPUs and GPUs of the cluster (its dashboard's /api/cluster_status); None when it does
    not answer. For the Train tab: {"cpus_free", "cpus", "gpus_free", "gpus"}."""
    import urllib.request

    try:
        with urllib.request.urlopen(f"{address.rstrip('/')}/api/cluster_status", timeout=timeout) as response:
            usage = json.load(response)["data"]["clusterStatus"]["loadMetricsReport"]["usage"]
    except Exception:
        return None
    out = {}
    for name in ("CPU", "GPU"):
        used, total = usage.get(name, [0.0, 0.0])
        out[f"{name.lower()}s"], out[f"{name.lower()}s_free"] = float(total), float(total) - float(used)
    return out


_totals: dict[str, tuple[float, dict[str, float] | None]] = {}  # address -> (when asked, cluster_resources)


def cluster_room(address: str | None, cluster: dict[str, Any], max_age: float = 5.0) -> int | None:
    """How many runs with `cluster`'s workers and resources per worker the cluster holds at once (its total
    CPUs and GPUs, at least 1; its own running trials count against it); None when no cluster answers."""
    if not address:
        return None
    at, found = _totals.get(address, (0.0, None))
    if time.monotonic() - at > max_age or found is None:
        found = cluster_resources(address)
        _totals[address] = (time.monotonic(), found)
    if found is None:
        return None
    room = found["cpus"] // (cluster["workers"] * cluster["worker_cpus"])
    if cluster["worker_gpus"]:
        room = min(room, found["gpus"] // (cluster["workers"] * cluster["worker_gpus"]))
    return max(1, int(room))
