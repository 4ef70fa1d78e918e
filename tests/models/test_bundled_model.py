"""The real thing: the bundled SmolLM2-135M-Instruct learns the identity example with default settings."""

import json

import pytest

from backend.playground.chat import load, probe
from backend.runs.queue import curve
from backend.services import Services
from tests.conftest import EXAMPLES, cli_json

pytestmark = pytest.mark.slow


def test_default_lora_run_teaches_the_new_name(workspace):
    held_out = json.loads((EXAMPLES / "identity_heldout.json").read_text(encoding="utf-8"))
    cli_json(workspace, "datasets", "add", str(EXAMPLES / "identity.json"), "--name", "identity")
    run = cli_json(workspace, "train", "--dataset", "identity", "--wait", timeout=1200)  # every setting default
    assert run["status"] == "completed", run.get("reason")
    assert run["metrics"]["precision"] in ("bf16", "fp32")

    services = Services.open(workspace)
    losses = [value for _, value in curve(services.database, run["id"], "loss")]
    assert len(losses) == run["total_steps"] and losses[-1] < losses[0] / 3  # it learned, visibly
    base = probe(*load(services.database, services.workspace, "SmolLM2-135M-Instruct"), held_out)
    tuned = probe(*load(services.database, services.workspace, run["id"]), held_out)
    before, after = sum(r["hit"] for r in base), sum(r["hit"] for r in tuned)
    misses = [(r["prompt"], r["answer"]) for r in tuned if not r["hit"]]
    assert before <= 2, f"the base model already knows the name? {before}/{len(held_out)}"
    assert after >= 0.9 * len(held_out), f"only {after}/{len(held_out)} held-out prompts answered; misses: {misses}"
