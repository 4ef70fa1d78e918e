"""Every task with every method, through the CLI as a user runs it: `train --task T --method M ... --wait`.

Three data sets in one workspace (chat rows, the shipped support tickets, 60 rendered digits), tiny
models for the two text tasks and MobileNetV3-small for images; two optimizer steps each. Each run
must complete, record its loss and its parameter counts as the method implies, and save what the
method produces (an adapter for LoRA, full weights otherwise).
"""

from __future__ import annotations

import math
import subprocess
import sys

import pytest

from tests.conftest import EXAMPLES, ROOT, cli, cli_json, write_alpaca

pytestmark = pytest.mark.slow

METHODS = {  # method -> the options it needs to act on two-layer models
    "full": (),
    "lora": ("--lora-rank", "4"),
    "freeze": ("--freeze-layers", "1"),
    "gradual": ("--unfreeze-every", "1", "--unfreeze-unit", "steps"),
}
TASKS = ("sft", "text-classification", "image-classification")


@pytest.fixture(scope="module")
def data(tmp_path_factory, tiny_model, tiny_bert):
    tmp = tmp_path_factory.mktemp("matrix")
    ws = tmp / "ws"
    cli_json(ws, "datasets", "add", str(write_alpaca(tmp / "chat.json", n=12)), "--name", "chat")
    cli_json(ws, "datasets", "add", str(EXAMPLES / "support_tickets.csv"), "--task", TASKS[1], "--name", "tickets")
    digits = tmp / "digits.zip"
    script = [sys.executable, str(EXAMPLES / "digits_to_imagefolder.py"), "--out", str(digits), "--limit", "60"]
    subprocess.run(script, cwd=ROOT, check=True, capture_output=True)
    cli_json(ws, "datasets", "add", str(digits), "--task", TASKS[2], "--name", "digits")
    return ws, {
        "sft": ("chat", str(tiny_model)),
        "text-classification": ("tickets", str(tiny_bert)),
        "image-classification": ("digits", "mobilenet_v3_small"),
    }


@pytest.mark.parametrize("method", list(METHODS))
@pytest.mark.parametrize("task", TASKS)
def test_every_task_trains_with_every_method_through_the_cli(data, task, method):
    ws, sets = data
    dataset, model = sets[task]
    run = cli_json(
        ws, "train", "--task", task, "--dataset", dataset, "--model", model, "--method", method,
        *METHODS[method], "--max-steps", "2", "--batch-size", "8", "--wait",
    )  # fmt: skip
    assert run["status"] == "completed", run.get("reason")
    assert run["step"] == 2 and run["config"]["method"] == method
    m = run["metrics"]
    assert math.isfinite(m["train_loss"]) and m["train_loss"] > 0
    trainable, total = m["trainable_params"], m["total_params"]
    if method == "full":
        assert trainable == total
    else:  # an adapter, or the top layer / the head only at the start
        assert 0 < trainable < total
    if task != "sft":
        assert 0 <= m["eval_accuracy"] <= 1 and m["confusion_matrix"]["labels"]
    saved = ws / "runs" / str(run["id"]) / ("adapter" if method == "lora" else "model")
    assert any(saved.glob("*.safetensors")), sorted(p.name for p in saved.parent.iterdir())
    if method == "gradual":
        assert "layer groups now train" in run["log_tail"]  # one more group after the first step
    if task != "sft" and method in ("full", "lora"):  # a classifier exports as a folder that loads, checked
        exported = cli_json(ws, "export", str(run["id"]), "--format", "merged")
        assert exported["verification"]["ok"] and exported["verification"]["max_abs_logit_diff"] <= 1e-3
        if task == "text-classification":
            from transformers import AutoModelForSequenceClassification

            loaded = AutoModelForSequenceClassification.from_pretrained(exported["path"])
            assert list(loaded.config.id2label.values()) == m["confusion_matrix"]["labels"]
        adapter = cli(ws, "export", str(run["id"]), "--format", "adapter", "--json")
        if task == "text-classification" and method == "lora":
            assert adapter.returncode == 0, adapter.stderr
        else:
            assert adapter.returncode == 2 and "export 'merged' instead" in adapter.stderr
        chat = cli(ws, "chat", str(run["id"]), "--prompt", "hi")
        assert chat.returncode == 2 and "the playground chats with chat (sft) runs" in chat.stderr
