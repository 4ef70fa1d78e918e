"""The datasets commands as a user runs them: add (every option), show, delete; JSON out, errors exit 2."""

from __future__ import annotations

import json

from tests.conftest import ROOT, cli, cli_json

GOOD = ROOT / "tests" / "assets" / "good"


def test_add_show_delete(workspace, tmp_path):
    proc = cli(workspace, "datasets", "add", str(GOOD / "llamafactory"), "--json")
    assert proc.returncode == 0, proc.stderr
    imported = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [d["name"] for d in imported] == [
        "alpaca_en_demo",
        "glaive_toolcall_en_demo",
        "openai_style_demo",
        "custom_qa",
        "c4_demo",
        "dpo_en_demo",  # ranking: true, a preference dataset
    ]
    assert "skipped mllm_demo" in proc.stderr  # said, not silently dropped

    ds = cli_json(
        workspace,
        "datasets",
        "add",
        str(GOOD / "stars.jsonl"),
        "--label-column",
        "stars",
        "--text-column",
        "content",
        "--val-ratio",
        "0.2",
        "--test-ratio",
        "0",
        "--seed",
        "3",
        "--name",
        "stars",
    )
    assert (ds["task"], ds["splits"], ds["created"]) == ("text-classification", {"train": 24, "validation": 6}, True)
    shown = cli_json(
        workspace,
        "datasets",
        "show",
        "stars",
        "--split",
        "validation",
        "--rows",
        "2",
        "--model",
        "SmolLM2-135M-Instruct",
    )
    assert shown["stats"]["labels"] == ["1", "2", "3"] and len(shown["preview"]) == 2
    assert shown["token_lengths"]["rows_measured"] == 6 and shown["token_lengths"]["cutoff"] == 512

    again = cli_json(
        workspace,
        "datasets",
        "add",
        str(GOOD / "stars.jsonl"),
        "--label-column",
        "stars",
        "--val-ratio",
        "0.2",
        "--test-ratio",
        "0",
        "--seed",
        "3",
        "--name",
        "stars",
    )
    assert again["created"] is False and again["duplicate_of"] == ds["id"]

    assert cli_json(workspace, "datasets", "delete", "stars")["deleted"] is True
    proc = cli(workspace, "datasets", "delete", "stars")
    assert (
        proc.returncode == 2
        and proc.stderr.strip() == "error: dataset 'stars' not found; add it first (Datasets tab or `datasets add`)"
    )
    proc = cli(workspace, "datasets", "add", str(GOOD / "alpaca.json"), "--task", "text-classification")
    assert proc.returncode == 2 and "alpaca.json: no label column found among 'instruction'" in proc.stderr


def test_skip_invalid_imports_the_other_rows_and_says_how_many_were_left_out(workspace, tmp_path):
    path = tmp_path / "dump.jsonl"
    path.write_text('{"instruction": "q", "output": "a"}\n{"instruction": "q2", "output": ""}\n')
    refused = cli(workspace, "datasets", "add", str(path), "--json")
    assert refused.returncode == 2 and "row 2: field 'output' is empty" in refused.stderr
    assert "--skip-invalid" in refused.stderr and "Traceback" not in refused.stderr
    ds = cli_json(workspace, "datasets", "add", str(path), "--skip-invalid")
    assert ds["num_rows"] == 1 and ds["stats"]["invalid_rows"] == 1
    assert "1 row(s) with problems left out, e.g. dump.jsonl row 2" in ds["message"]
