"""Runs on a real Ray cluster started here (a head on 127.0.0.1): submitted, trained by Ray Train's
TorchTrainer with 2 workers like a local 2-process run, cancelled, resumed as a new run, found again by a
restarted supervisor; a search whose trials run side by side there; and, with a second node joined, a
run whose 2 workers train on 2 nodes."""

import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import NamedTuple

import pytest

from backend.runs.queue import curve, get_run
from backend.runs.supervisor import Supervisor
from backend.services import Services
from tests.conftest import cli, cli_json, write_alpaca

pytestmark = pytest.mark.slow

# Ray replaces 127.0.0.1 by the machine's address unless told it is not a cluster of several machines.
RAY_ENV = {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "RAY_USAGE_STATS_ENABLED": "0"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.5)
    raise AssertionError(f"{what}: not within {timeout:.0f} s")


@pytest.fixture(scope="module")
def ray_head():
    """`ray start --head --block` in its own process group; stopped by killing the group this fixture started."""
    from ray.job_submission import JobSubmissionClient

    temp = tempfile.mkdtemp(prefix="tbray", dir="/tmp")  # short: Ray's socket paths must fit in 107 bytes
    dashboard, gcs = free_port(), free_port()
    cmd = [str(Path(sys.executable).parent / "ray"), "start", "--head", "--block", "--node-ip-address", "127.0.0.1"]
    cmd += ["--dashboard-host", "127.0.0.1", "--port", str(gcs), "--dashboard-port", str(dashboard)]
    cmd += ["--temp-dir", temp, "--num-cpus", "3", "--include-dashboard", "true"]
    log = open(Path(temp) / "head.log", "wb")  # noqa: SIM115 - open while the head lives
    head = subprocess.Popen(
        cmd, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, **RAY_ENV}, start_new_session=True
    )
    address = f"http://127.0.0.1:{dashboard}"

    def answers():
        assert head.poll() is None, (Path(temp) / "head.log").read_text()[-3000:]
        with contextlib.suppress(Exception):
            return JobSubmissionClient(address)

    try:
        wait_for(answers, 180, "the Ray head's dashboard")
        yield Head(address, f"127.0.0.1:{gcs}", temp)
    finally:
        stop_group(head)
        log.close()
        shutil.rmtree(temp, ignore_errors=True)


class Head(NamedTuple):
    address: str  # the dashboard (Jobs API)
    gcs: str  # where nodes join
    temp: str


def stop_group(process: subprocess.Popen) -> None:
    """End the process group this test started: SIGTERM (Ray stops its processes itself), then SIGKILL."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=5)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=10)


# A second node on this machine, joined to the head as Ray's own multi-node tests do (ray.cluster_utils: a
# raylet through ray._private.node.Node). `ray start --address` refuses to join while Ray is kept on 127.0.0.1
# (RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0: "Multi-node Ray clusters are not supported on Windows and OSX"), and
# without that setting Ray binds the machine's network address.
NODE = """
import signal, sys, time
import ray._private.node
from ray._private.parameter import RayParams

params = RayParams(gcs_address=sys.argv[1], node_ip_address="127.0.0.1", num_cpus=float(sys.argv[2]), num_gpus=0,
                   object_store_memory=150 * 2**20, include_log_monitor=False, node_manager_port=0,
                   min_worker_port=0, max_worker_port=0)
params.dashboard_agent_listen_port = None
node = ray._private.node.Node(params, head=False, shutdown_at_exit=True, spawn_reaper=True)
print("node", node.unique_id, flush=True)

def stop(*_):
    node.kill_all_processes(check_alive=False, allow_graceful=True, wait=True)
    sys.exit(0)

signal.signal(signal.SIGTERM, stop)
while True:
    time.sleep(3600)
"""


def alive_nodes(address: str) -> list[str]:
    with urllib.request.urlopen(f"{address}/nodes?view=summary", timeout=5) as response:
        nodes = json.load(response)["data"]["summary"]
    return [n["raylet"]["nodeId"] for n in nodes if n.get("raylet", {}).get("state") == "ALIVE"]


@pytest.fixture(scope="module")
def second_node(ray_head):
    """A second Ray node process (2 CPUs) joined to the head, on 127.0.0.1; ended by killing its group."""
    log = open(Path(ray_head.temp) / "node.log", "wb")  # noqa: SIM115 - open while the node lives
    node = subprocess.Popen(
        [sys.executable, "-c", NODE, ray_head.gcs, "2"],
        stdout=log,
        stderr=subprocess.STDOUT,
        env={**os.environ, **RAY_ENV},
        start_new_session=True,
    )

    def joined():
        assert node.poll() is None, (Path(ray_head.temp) / "node.log").read_text()[-3000:]
        with contextlib.suppress(Exception):
            return len(alive_nodes(ray_head.address)) == 2

    try:
        wait_for(joined, 120, "the second node joining the head")
        yield node
    finally:
        stop_group(node)
        log.close()


@pytest.fixture
def cluster(ray_head, monkeypatch):
    monkeypatch.setenv("TUNEBOARD_RAY_ADDRESS", ray_head.address)  # the CLI's and the supervisor's cluster
    return ray_head.address


def tick_until(supervisor: Supervisor, services: Services, run_id: int, done, timeout: float, what: str):
    def check():
        supervisor.tick()
        run = get_run(services.database, run_id)
        return run if done(run) else None

    return wait_for(check, timeout, what)


def test_runs_train_on_the_cluster_are_cancelled_and_survive_a_supervisor_restart(
    cluster, workspace, tiny_model, tmp_path
):
    cli_json(workspace, "datasets", "add", str(write_alpaca(tmp_path / "add.json", n=16)), "--name", "add")
    train = ("train", "--dataset", "add", "--model", str(tiny_model), "--method", "full", "--devices", "cpu")
    slim = ("--worker-cpus", "0.5")  # the long run's worker: half a CPU, which its resumed run keeps
    # All at once (the head has room for 3 workers): one to the end with 2 workers, one long one to cancel,
    # and the same 2-process run on this machine (torchrun, DDP over gloo) to compare the loss curves with.
    two = cli_json(workspace, *train, *("--max-steps", "4", "--batch-size", "2", "--executor", "ray", "--workers", "2"))
    long = cli_json(workspace, *train, *("--max-steps", "2000", "--batch-size", "2", "--executor", "ray"), *slim)
    local = cli_json(workspace, *train, *("--max-steps", "4", "--batch-size", "2", "--nproc", "2"))
    services = Services.open(workspace)
    first = Supervisor(services.database, services.workspace, ray=cluster)
    for queued in (two, long):
        run = tick_until(first, services, queued["id"], lambda r: r.cluster_job_id, 60, "the run's job submitted")
        assert run.status.value == "running" and run.cluster_job_id.startswith(f"tuneboard-run-{queued['id']}-")

    # The dashboard goes away mid-run; a new one finds the jobs on the cluster (by their metadata) and follows them.
    del first
    second = Supervisor(services.database, services.workspace, ray=cluster)
    tick_until(second, services, long["id"], lambda r: r.step >= 2, 240, "the long run training")
    assert cli_json(workspace, "runs", "cancel", str(long["id"]))["status"] == "running"
    asked = time.monotonic()
    cancelled = tick_until(second, services, long["id"], lambda r: r.status.finished, 60, "the cancelled run ended")
    assert cancelled.status.value == "cancelled" and time.monotonic() - asked < 30
    _resume_as_new_keeps_the_cluster(workspace, services, second, cluster, cancelled)
    run = tick_until(second, services, two["id"], lambda r: r.status.finished, 240, "the 2-worker run finished")

    shown = cli_json(workspace, "runs", "show", str(two["id"]))
    assert shown["status"] == "completed", shown["reason"]
    assert shown["executor"] == "ray" and shown["workers"] == 2 and shown["cluster_job_id"] == run.cluster_job_id
    assert shown["metrics"]["world_size"] == 2  # the Trainer ran in Ray Train's 2-process group
    assert shown["epoch"] == 1.0  # 4 steps x 2 rows x 2 workers = the 16 rows once: each worker saw its half
    on_ray = curve(services.database, two["id"])
    assert [step for step, _ in on_ray] == [1, 2, 3, 4]
    here = tick_until(second, services, local["id"], lambda r: r.status.finished, 240, "the local DDP run finished")
    assert here.status.value == "completed", here.reason
    # Same seed, same data order per rank, same all-reduce: the cluster trains what this machine trains.
    assert [v for _, v in on_ray] == pytest.approx([v for _, v in curve(services.database, local["id"])], rel=1e-3)
    assert "[rank 0]" in shown["log_tail"] and "[rank 1]" in shown["log_tail"]
    model = Path(shown["artifacts"][0]["path"])  # in the workspace, the storage every node reaches
    assert model.is_relative_to(services.workspace.root) and (model / "config.json").is_file()
    assert "RayTrainWorker" in shown["cluster_log_tail"] or "TrainController" in shown["cluster_log_tail"]
    from ray.job_submission import JobSubmissionClient

    jobs = JobSubmissionClient(cluster)  # the cancelled run's job ends too (its workers stopped, or stop_job)
    wait_for(lambda: jobs.get_job_status(cancelled.cluster_job_id).is_terminal(), 60, "the cancelled job ended")


def _resume_as_new_keeps_the_cluster(workspace, services, supervisor, address, cancelled):
    """The cancelled run resumed as a new one: on the cluster again, with its worker's resources, from its
    checkpoint."""
    from ray.job_submission import JobSubmissionClient

    child = cli_json(workspace, "runs", "resume", str(cancelled.id), "--as-new")
    shown = cli_json(workspace, "runs", "show", str(child["id"]))
    assert (shown["executor"], shown["workers"], shown["step"]) == ("ray", 1, child["step"]) and child["step"] > 0
    run = tick_until(supervisor, services, child["id"], lambda r: r.step > child["step"], 240, "the resumed run")
    assert run.cluster_job_id.startswith(f"tuneboard-run-{child['id']}-")
    entrypoint = JobSubmissionClient(address).get_job_info(run.cluster_job_id).entrypoint
    assert "--workers 1 --worker-cpus 0.5 --worker-gpus 0" in entrypoint
    cli_json(workspace, "runs", "cancel", str(child["id"]))
    ended = tick_until(supervisor, services, child["id"], lambda r: r.status.finished, 60, "the resumed run cancelled")
    assert ended.status.value == "cancelled" and ended.parent_id == cancelled.id


def test_a_search_runs_its_trials_side_by_side_on_the_cluster(cluster, workspace, tiny_model, tmp_path, monkeypatch):
    """`search --executor ray --wait`: each trial is a job on the cluster, as many at once as the cluster holds.
    The cluster is the one the app's supervisor announced in the workspace (no $TUNEBOARD_RAY_ADDRESS): the
    CLI's --wait supervises the trials there."""
    from ray.job_submission import JobSubmissionClient

    from backend.runs.ray_jobs import ADDRESS_FILE, announce, cluster_room

    monkeypatch.delenv("TUNEBOARD_RAY_ADDRESS")
    announce(Services.open(workspace).workspace, cluster)  # as `app.py --ray ADDRESS` leaves it

    cli_json(workspace, "datasets", "add", str(write_alpaca(tmp_path / "add.json", n=8)), "--name", "add")
    space = tmp_path / "space.yaml"
    space.write_text("learning_rate: {type: categorical, choices: [0.001, 0.01]}\n")
    search = ("search", "--space", str(space), "--sampler", "grid", "--no-prune", "--metric", "train_loss")
    run = ("--dataset", "add", "--model", str(tiny_model), "--method", "full", "--devices", "cpu", "--max-steps", "3")
    ray = ("--batch-size", "2", "--executor", "ray", "--parallel", "0")
    out = cli_json(workspace, *search, *run, *ray, "--wait", timeout=300)
    assert (out["executor"], out["parallel"], out["trials_planned"]) == ("ray", 0, 2)
    assert out["cluster"] == {"workers": 1, "worker_cpus": 1.0, "worker_gpus": 0.0}
    assert cluster_room(cluster, out["cluster"]) == 3  # the head's 3 CPUs: up to 3 such trials at once
    assert (workspace / ADDRESS_FILE).read_text().strip() == cluster  # the waiting CLI kept the workspace's cluster
    services = Services.open(workspace)
    report = cli_json(workspace, "search", "show", str(out["id"]))
    assert report["status"] == "completed" and [t["state"] for t in report["trials"]] == ["complete"] * 2, report
    runs = [get_run(services.database, t["run_id"]) for t in report["trials"]]
    jobs = JobSubmissionClient(cluster)
    for trial, run in zip(report["trials"], runs, strict=True):
        assert run.executor == "ray" and run.cluster_job_id.startswith(f"tuneboard-run-{run.id}-")
        # rank 0 writes the run's outcome; its job ends a moment later, once Ray Train has shut down
        wait_for(lambda job=run.cluster_job_id: jobs.get_job_status(job).is_terminal(), 60, "the trial's job ended")
        assert jobs.get_job_status(run.cluster_job_id).value == "SUCCEEDED"
        assert trial["value"] == pytest.approx(run.metrics["train_loss"])
    first, second = sorted(runs, key=lambda r: r.started_at)
    assert second.started_at < first.finished_at  # side by side on the cluster, not one after the other
    assert sorted(r.config["learning_rate"] for r in runs) == [0.001, 0.01]


def test_evaluations_run_side_by_side_as_jobs_on_the_cluster(cluster, workspace, tiny_model):
    """`evaluate --executor ray`: each evaluation is a Ray job with the resources it asked for, two at once
    (on this machine they would run one after the other); each scores as a local one does. One asking for
    more CPUs than the cluster has waits (PENDING); cancelled, it ends here at once."""
    from ray.job_submission import JobSubmissionClient

    args = ("evaluate", "--model", str(tiny_model), "--limit", "2", "--executor", "ray", "--worker-cpus", "0.5")
    queued = [cli_json(workspace, *args, "--suite", suite) for suite in ("arithmetic", "mc-en")]
    too_big = cli_json(workspace, *args[:-1], "64", "--suite", "arithmetic")
    assert [(e["status"], e["executor"], e["options"]["cluster"]) for e in queued] == [
        ("queued", "ray", {"worker_cpus": 0.5, "worker_gpus": 0.0})
    ] * 2
    services = Services.open(workspace)
    supervisor = Supervisor(services.database, services.workspace, ray=cluster)

    def ended():
        supervisor.tick()
        shown = [cli_json(workspace, "evaluate", "show", str(e["id"])) for e in queued]
        return shown if all(e["status"] not in ("queued", "running") for e in shown) else None

    shown = wait_for(ended, 240, "two evaluations on the cluster")
    assert [(e["status"], e["results"][0]["n"]) for e in shown] == [("completed", 2)] * 2, shown
    jobs = JobSubmissionClient(cluster)
    infos = []
    for e in shown:
        assert e["cluster_job_id"].startswith(f"tuneboard-eval-{e['id']}-")
        wait_for(lambda job=e["cluster_job_id"]: jobs.get_job_status(job).is_terminal(), 60, "the job ended")
        infos.append(jobs.get_job_info(e["cluster_job_id"]))
    assert [i.status.value for i in infos] == ["SUCCEEDED"] * 2
    first, second = sorted(infos, key=lambda i: i.start_time)
    assert second.start_time < first.end_time  # side by side on the cluster
    waiting = cli_json(workspace, "evaluate", "show", str(too_big["id"]))
    assert waiting["status"] == "running" and jobs.get_job_status(waiting["cluster_job_id"]).value == "PENDING"
    # cancelled: at once here; Ray queues the stop on the job's supervisor actor, which cannot start without the
    # CPUs, so the job stays PENDING (until Ray's start timeout) and never runs the worker
    assert cli_json(workspace, "evaluate", "cancel", str(too_big["id"]))["status"] == "cancelled"
    time.sleep(2)
    assert jobs.get_job_status(waiting["cluster_job_id"]).value in ("PENDING", "STOPPED")
    assert cli_json(workspace, "evaluate", "show", str(too_big["id"]))["status"] == "cancelled"


def test_bad_cluster_settings_are_refused_before_anything_is_queued(workspace, tiny_model, tmp_path, monkeypatch):
    cli_json(workspace, "datasets", "add", str(write_alpaca(tmp_path / "add.json", n=8)), "--name", "add")
    train = ("train", "--dataset", "add", "--model", str(tiny_model), "--method", "full")
    monkeypatch.delenv("TUNEBOARD_RAY_ADDRESS", raising=False)
    no_address = cli(workspace, *train, "--executor", "ray")
    assert no_address.returncode == 2 and "TUNEBOARD_RAY_ADDRESS=http://HEAD:8265" in no_address.stderr
    monkeypatch.setenv("TUNEBOARD_RAY_ADDRESS", f"http://127.0.0.1:{free_port()}")  # nothing listens there
    silent = cli(workspace, *train, "--executor", "ray")
    assert silent.returncode == 2 and "does not answer" in silent.stderr
    local = cli(workspace, *train, "--workers", "2")
    assert local.returncode == 2 and "--executor ray" in local.stderr
    from backend import actions  # a search's cluster options, refused as a ray run's are (in this process: fast)

    services = Services.open(workspace)
    settings = {"dataset": "add", "model": str(tiny_model), "method": "full"}
    space = {"learning_rate": {"type": "categorical", "choices": [0.001, 0.01]}}

    def search(**options):
        with pytest.raises(ValueError) as refused:
            actions.search(services, settings, space, {"prune": False, "metric": "train_loss", **options})
        return str(refused.value)

    assert "does not answer" in search(executor="ray")
    assert "--executor ray" in search(workers=2)
    assert "--parallel 0" in search(parallel=0) and "--executor ray" in search(parallel=0)
    assert actions.list_searches(services) == []
    evaluate = ("evaluate", "--model", str(tiny_model), "--suite", "arithmetic")
    silent_eval = cli(workspace, *evaluate, "--executor", "ray")
    assert silent_eval.returncode == 2 and "does not answer" in silent_eval.stderr
    local_eval = cli(workspace, *evaluate, "--worker-cpus", "2")
    assert local_eval.returncode == 2 and "--executor ray" in local_eval.stderr
    assert cli_json(workspace, "evaluate", "list") == []
    assert cli_json(workspace, "runs", "list") == []


def test_without_ray_installed_the_cli_says_how_to_install_it(services, tiny_model, tmp_path, monkeypatch):
    """Ray is optional: where it is missing, a ray run is refused with the install command and queues nothing."""
    from backend import actions
    from backend.data import import_file
    from backend.runs import ray_jobs

    import_file(services.database, services.workspace, write_alpaca(tmp_path / "add.json", n=8), name="add")
    monkeypatch.setattr(ray_jobs, "installed", lambda: False)  # what find_spec says on a machine without Ray
    settings = {"dataset": "add", "model": str(tiny_model), "method": "full", "executor": "ray", "workers": 2}
    with pytest.raises(ValueError, match="pip install -r requirements-cluster.txt"):
        actions.train(services, settings)
    with pytest.raises(ValueError, match="requirements-cluster.txt"):
        Supervisor(services.database, services.workspace, ray="http://127.0.0.1:8265")
    assert actions.list_runs(services) == []


def test_a_runs_two_workers_train_on_two_nodes(cluster, second_node, workspace, tiny_model, tmp_path):
    """Last (the second node joins here): a worker needing 2 CPUs fits once on the head (3 CPUs) and once on
    the second node (2), so Ray Train places the run's 2 workers on 2 nodes; DDP over gloo between them."""
    from ray.job_submission import JobSubmissionClient

    from backend import actions
    from backend.data import import_file

    services = Services.open(workspace)  # in this process: the CLI's start-up is not what this test is about
    import_file(services.database, services.workspace, write_alpaca(tmp_path / "add.json", n=8), name="add")
    settings = {"dataset": "add", "model": str(tiny_model), "method": "full", "devices": "cpu", "max_steps": 2}
    settings.update(batch_size=2, executor="ray", workers=2, worker_cpus=2)
    queued = actions.train(services, settings)
    supervisor = Supervisor(services.database, services.workspace, ray=cluster)
    run = tick_until(supervisor, services, queued["id"], lambda r: r.status.finished, 240, "the 2-node run")
    assert run.status.value == "completed", run.reason
    assert run.metrics["world_size"] == 2 and [step for step, _ in curve(services.database, run.id)] == [1, 2]
    log = JobSubmissionClient(cluster).get_job_logs(run.cluster_job_id)
    placed = dict(re.findall(r"tuneboard: rank (\d) of 2 on node (\w+)", log))
    assert sorted(placed) == ["0", "1"], log[-3000:]
    assert len(set(placed.values())) == 2 and set(placed.values()) <= set(alive_nodes(cluster))
