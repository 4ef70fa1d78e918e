"""One trained tiny text classifier shared by the distillation and pruning tests."""

from __future__ import annotations

import pytest

from tests.conftest import EXAMPLES, cli_json


@pytest.fixture(scope="session")
def teacher(tmp_path_factory, tiny_bert):
    """A tiny BERT text classifier trained on the support tickets: a teacher, and a run to prune."""
    ws = tmp_path_factory.mktemp("compress") / "ws"
    cli_json(ws, "datasets", "add", str(EXAMPLES / "support_tickets.csv"), "--task", "text-classification")
    run = cli_json(
        ws, "train", "--task", "text-classification", "--dataset", "support_tickets", "--model", str(tiny_bert),
        "--max-steps", "6", "--batch-size", "16", "--lr", "5e-3", "--wait",
    )  # fmt: skip
    assert run["status"] == "completed", run.get("reason")
    return ws, run["id"]
