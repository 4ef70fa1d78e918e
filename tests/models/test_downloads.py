"""Models from a real Hub-compatible server (olah on 127.0.0.1): pull, list, delete, refuse, cancel, resume."""

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import EXAMPLES, ROOT, cli, cli_json


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
