"""What a new user tripped over: the task follows the dataset, base models chat, a wrong name is refused fast."""

import subprocess
import sys

from tests.conftest import EXAMPLES, ROOT, cli, cli_json


def test_task_follows_the_dataset_when_not_given(workspace):
    cli_json(workspace, "datasets", "add", str(EXAMPLES / "support_tickets.csv"), "--name", "reviews")
    run = cli_json(workspace, "train", "--dataset", "reviews", "--model", "all-MiniLM-L6-v2")
    assert (run["task"], run["status"], run["method"]) == ("text-classification", "queued", "full")
    # a task given explicitly still wins, and the mismatch is refused in one line
    proc = cli(workspace, "train", "--dataset", "reviews", "--task", "sft")
    assert proc.returncode == 2 and "is a text-classification dataset" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


def test_a_wrong_model_name_is_refused_without_importing_torch(workspace):
    cli_json(workspace, "datasets", "add", str(EXAMPLES / "identity.json"), "--name", "identity")
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "backend.cli", "--workspace", str(workspace), "train"]
        + ["--dataset", "identity", "--model", "no-such-model"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert errors == [errors[0]] and "no-such-model" in errors[0] and "hub id" in errors[0]
    imported = {line.rsplit("|", 1)[-1].strip() for line in proc.stderr.splitlines() if "import time:" in line}
    assert "torch" not in imported and "transformers" not in imported
    assert cli_json(workspace, "runs", "list") == []  # nothing queued


def test_chat_with_a_base_model_before_any_run(workspace, tiny_model):
    said = cli_json(workspace, "chat", str(tiny_model), "--prompt", "Who are you?", "--max-new-tokens", "4")
    assert said["run_id"] == str(tiny_model) and isinstance(said["reply"], str)
    proc = cli(workspace, "chat", "7", "--prompt", "hi")  # a number is a run id, and there is no run 7
    assert proc.returncode == 2 and "7" in proc.stderr
