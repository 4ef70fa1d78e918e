"""Models from a real Hub-compatible server (olah on 127.0.0.1): pull, list, delete, refuse, cancel, resume."""

import contextlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import EXAMPLES, ROOT, cli, cli_json, write_alpaca


def cli_env(workspace: Path, *args: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "backend.cli", "--workspace", str(workspace), *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, **env},
    )


def test_pull_list_and_delete_through_the_hub_client(workspace, local_hub):
    local_hub.clear_cache()
    pulled = cli_json(workspace, "models", "pull", "tiny/chat", "--wait", timeout=300)
    assert (pulled["id"], pulled["revision"], pulled["status"]) == ("tiny/chat", "main", "completed")
    assert Path(pulled["path"], "config.json").is_file() and pulled["size_mb"] > 0
    assert Path(pulled["path"]).is_relative_to(local_hub.cache)  # in the hub client's own cache
    again = cli_json(workspace, "models", "pull", "tiny/chat")
    assert again["status"] == "completed" and again["download_id"] is None  # on disk: nothing to fetch

    [download] = cli_json(workspace, "models", "downloads")
    assert download["bytes_done"] == download["bytes_total"] > 0 and download["progress"] == 1.0

    listed = {m["id"]: m for m in cli_json(workspace, "models", "list")}
    assert listed["tiny/chat"]["causal_lm"] and listed["tiny/chat"]["size_mb"] > 0
    assert listed["all-MiniLM-L6-v2"]["hub"] == "bundled"

    removed = cli_json(workspace, "models", "rm", "tiny/chat")
    assert removed["id"] == "tiny/chat" and removed["freed_mb"] > 0
    assert "tiny/chat" not in {m["id"] for m in cli_json(workspace, "models", "list")}
    proc = cli(workspace, "models", "rm", "tiny/chat")
    assert proc.returncode == 2 and "not on disk" in proc.stderr


def test_a_missing_repo_or_revision_is_one_clear_line(workspace, local_hub):
    proc = cli(workspace, "models", "pull", "tiny/nothing-here", "--wait", "--json")
    assert proc.returncode == 2 and proc.stdout == ""
    [line] = proc.stderr.strip().splitlines()
    assert "tiny/nothing-here was not found" in line and local_hub.url in line
    proc = cli(workspace, "models", "pull", "tiny/chat@no-such-branch", "--wait", "--json")
    [line] = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and "no revision 'no-such-branch'" in line
    assert not list(local_hub.cache.glob("models--tiny--nothing-here/snapshots/*"))  # nothing half-written


def test_offline_refuses_models_not_on_disk_and_uses_those_that_are(workspace, local_hub):
    local_hub.clear_cache()
    cli_json(workspace, "datasets", "add", str(EXAMPLES / "identity.json"), "--name", "identity")
    for env in ({"HF_HUB_OFFLINE": "1"}, {"HF_ENDPOINT": "http://127.0.0.1:9"}):  # port 9: nothing listens
        for args in (["models", "pull", "tiny/chat"], ["train", "--dataset", "identity", "--model", "tiny/chat"]):
            proc = cli_env(workspace, *args, **env)
            assert proc.returncode == 2, proc.stdout
            [line] = proc.stderr.strip().splitlines()
            assert "tiny/chat" in line and "cannot be downloaded now" in line
    assert cli_json(workspace, "runs", "list") == [] and cli_json(workspace, "models", "downloads") == []

    cli_json(workspace, "models", "pull", "tiny/chat", "--wait", timeout=300)
    proc = cli_env(workspace, "train", "--dataset", "identity", "--model", "tiny/chat", "--json", HF_HUB_OFFLINE="1")
    run = json.loads(proc.stdout)
    assert proc.returncode == 0 and run["status"] == "queued" and run["download_id"] is None  # from the cache


def _until(check, what: str, timeout: float = 120.0):
    import time

    deadline = time.monotonic() + timeout
    while not (value := check()):
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)
    return value


def test_cancel_kill_and_resume_with_a_run_waiting(services, local_hub, tiny_model, tmp_path):
    """A download cancelled, then killed with SIGKILL, leaves only .incomplete files (never used); a run
    queued on the model waits, and ends when its download fails; the next pull keeps the whole files,
    drops the partial one and completes."""
    import hashlib
    import signal

    from backend.config import RunConfig
    from backend.data import import_file
    from backend.models.downloads import cancel_download, get_download, queue_download
    from backend.models.hub import local_snapshot, parse_hub_id
    from backend.runs.queue import create_run, get_run
    from backend.runs.supervisor import Supervisor
    from db import RunStatus
    from tests.conftest import write_alpaca

    local_hub.clear_cache()
    supervisor = Supervisor(services.database, services.workspace, tick=0.2)
    ref = parse_hub_id("tiny/big")

    def partial() -> int:
        """Bytes in .incomplete files; one may be renamed (finished) between the listing and its stat."""
        total = 0
        for f in local_hub.cache.glob("models--tiny--big/blobs/*.incomplete"):
            with contextlib.suppress(FileNotFoundError):
                total += f.stat().st_size
        return total

    def started(download_id: int):
        """The download once its big file is partly written (and its row says so)."""
        supervisor.tick()
        d = get_download(services.database, download_id)
        return d if partial() > 0 and d.bytes_total > d.bytes_done > 0 and d.status == "running" else None

    first = started_first = _until(lambda: started(queue_download(services.database, ref).id), "progress")
    assert first.bytes_total > BIG_BYTES and first.status == "running" and first.speed > 0
    cancelled = cancel_download(services.database, first.id)
    assert cancelled.status == "cancelled"
    _until(lambda: not _alive(started_first.pid), "the cancelled download's process to end", 30)
    assert local_snapshot(ref) is None  # nothing half-written is used
    assert partial() > 0  # kept for the next pull

    import_file(services.database, services.workspace, write_alpaca(tmp_path / "sums.json", n=8), name="sums")
    run_id = create_run(services.database, services.workspace, RunConfig(dataset="sums", model="tiny/big")).id
    waiting = get_run(services.database, run_id)
    assert waiting.status == RunStatus.queued and waiting.download_id is not None
    from backend.runs.query import summary
    from webui.tabs.runs_views import header

    shown = summary(get_run(services.database, run_id), detail=True, database=services.database)
    assert shown["download"]["id"] == waiting.download_id and shown["download"]["status"] == "queued"
    assert "downloading tiny/big" in header(shown)  # the Runs page says what the run waits for
    second = _until(lambda: started(waiting.download_id), "the run's download to make progress")
    assert get_run(services.database, run_id).status == RunStatus.queued  # not started while downloading
    os.kill(second.pid, signal.SIGKILL)
    _until(lambda: not _alive(second.pid), "the killed download to end", 30)
    supervisor.tick()
    failed = get_download(services.database, second.id)
    assert failed.status == "failed" and "pull again to resume" in failed.reason
    run = get_run(services.database, run_id)
    assert run.status == RunStatus.failed and "download failed" in run.reason
    assert partial() > 0 and local_snapshot(ref) is None

    whole = {
        p.name: p.stat().st_mtime_ns
        for p in local_hub.cache.glob("models--tiny--big/blobs/*")
        if p.suffix != ".incomplete"
    }
    assert whole  # config and tokenizer files landed before the kill
    third = queue_download(services.database, ref)
    done = _until(
        lambda: (
            (supervisor.tick(), get_download(services.database, third.id))[1].status == "completed"
            and get_download(services.database, third.id)
        ),
        "the resumed download",
        180,
    )
    folder = Path(done.path)
    assert folder == local_snapshot(ref) and partial() == 0  # the killed download's partial file is gone
    for name, mtime in whole.items():  # whole files were kept, not fetched again
        assert (local_hub.cache / "models--tiny--big" / "blobs" / name).stat().st_mtime_ns == mtime
    served = local_hub.mirrors / "models" / "tiny" / "big" / "noise.safetensors"
    digest = lambda p: hashlib.sha256(p.read_bytes()).hexdigest()  # noqa: E731
    assert digest(folder / "noise.safetensors") == digest(served)  # the resumed file is whole and right


BIG_BYTES = 24 * 2**20


def _alive(pid: int) -> bool:
    from backend.processes import is_alive

    return is_alive(pid, None)


@pytest.mark.slow
def test_train_pulls_a_hub_model_first_then_trains_and_chats(workspace, local_hub, tmp_path):
    local_hub.clear_cache()
    cli_json(workspace, "datasets", "add", str(write_alpaca(tmp_path / "sums.json", n=8)), "--name", "sums")
    run = cli_json(
        workspace, "train", "--dataset", "sums", "--model", "tiny/chat", "--max-steps", "2", "--batch-size", "2",
        "--lora-rank", "4", "--wait", timeout=600,
    )  # fmt: skip
    assert run["status"] == "completed", run.get("reason")
    assert run["model"] == "tiny/chat" and run["download_id"] is None
    [download] = cli_json(workspace, "models", "downloads")
    assert download["status"] == "completed" and download["model"] == "tiny/chat"
    said = cli_json(workspace, "chat", str(run["id"]), "--prompt", "Who are you?", "--max-new-tokens", "3")
    assert isinstance(said["reply"], str)
    base = cli_json(workspace, "chat", "tiny/chat", "--prompt", "Who are you?", "--max-new-tokens", "3")
    assert base["run_id"] == "tiny/chat" and isinstance(base["reply"], str)  # the downloaded base chats too


def test_modelscope_ids_go_to_modelscope_and_are_refused_offline(workspace):
    """The ModelScope seam: the hub is chosen by --hub or TUNEBOARD_HUB; here ModelScope is out of reach (no
    local ModelScope-compatible server exists to test against), so the pull is refused in one line."""
    proc = cli_env(workspace, "models", "pull", "Qwen/Qwen2.5-0.5B-Instruct", MODELSCOPE_DOMAIN="http://127.0.0.1:9")
    assert proc.returncode == 2  # TUNEBOARD_HUB unset: the Hugging Face client, offline in tests
    proc = cli_env(
        workspace, "models", "pull", "Qwen/Qwen2.5-0.5B-Instruct", TUNEBOARD_HUB="modelscope",
        MODELSCOPE_DOMAIN="http://127.0.0.1:9",
    )  # fmt: skip
    [line] = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and "http://127.0.0.1:9 cannot be reached" in line
    proc = cli_env(workspace, "models", "pull", "Qwen/x", "--hub", "elsewhere")
    assert proc.returncode == 2 and "invalid choice" in proc.stderr


def test_the_models_list_says_which_hub_models_a_run_can_use_now(local_hub, tmp_path, monkeypatch):
    """Reachable hub: every curated model is usable (it downloads first). Offline: only those on disk,
    and the list answers without waiting on the network again."""
    from backend.models.library import catalog

    local_hub.clear_cache()
    online = catalog("sft", tmp_path)
    assert online[0]["usable"] and all(m["usable"] for m in online)  # bundled first, hub models pullable
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    offline = catalog("sft", tmp_path)
    hub_models = [m for m in offline if "/" in m["id"]]
    assert hub_models and not any(m["usable"] or m["on_disk"] for m in hub_models)
    assert offline[0]["usable"]  # the bundled model needs no hub
