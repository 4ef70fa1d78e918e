"""The GRPO example's two-stage recipe (examples/arithmetic/README.md): the format demos script writes chat rows
that import as an SFT dataset, taken from the training prompts only; the example folder still imports as
96 + 24 GRPO prompts with the script and README lying in it."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

from tests.conftest import cli_json

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "arithmetic"


def _jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]


def test_format_demos_are_training_answers_in_the_required_format(tmp_path):
    out = tmp_path / "demos.jsonl"
    script = [sys.executable, str(EXAMPLE / "format_demos.py"), "--out", str(out), "--english", "5", "--chinese", "3"]
    subprocess.run(script, check=True, capture_output=True)
    rows = _jsonl(out)
    answers = {r["prompt"]: r["answer"] for r in _jsonl(EXAMPLE / "train.jsonl")}
    held_out = {r["prompt"] for r in _jsonl(EXAMPLE / "validation.jsonl")}
    assert len(rows) == 8 and sum(r["messages"][0]["content"].startswith("计算") for r in rows) == 3
    for row in rows:
        user, assistant = row["messages"]
        assert (user["role"], assistant["role"]) == ("user", "assistant")
        assert user["content"] in answers and user["content"] not in held_out
        assert re.fullmatch(r"<answer>-?\d+</answer>", assistant["content"])
        assert assistant["content"] == f"<answer>{answers[user['content']]}</answer>"


def test_demos_import_as_sft_and_the_example_folder_still_as_prompts(workspace, tmp_path):
    out = tmp_path / "demos.jsonl"
    subprocess.run([sys.executable, str(EXAMPLE / "format_demos.py"), "--out", str(out)], check=True)
    demos = cli_json(workspace, "datasets", "add", str(out), "--name", "arithmetic-demos")
    prompts = cli_json(workspace, "datasets", "add", str(EXAMPLE), "--name", "arithmetic")
    assert demos["task"] == "sft" and demos["num_rows"] == 24
    shown = cli_json(workspace, "datasets", "show", "arithmetic")
    assert prompts["task"] == shown["task"] == "prompts"
    assert shown["splits"] == {"train": 96, "validation": 24}, shown["splits"]
