"""The CLI contract, end to end with real worker processes and a tiny model."""

import json

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from tests.conftest import EXAMPLES, cli, cli_json, write_alpaca


def test_add_train_show_export_round_trip(workspace, tiny_model):
    ds = cli_json(workspace, "datasets", "add", str(EXAMPLES / "identity.json"), "--name", "identity")
    assert ds["name"] == "identity" and ds["num_rows"] > 100 and ds["id"] == 1
    assert [d["name"] for d in cli_json(workspace, "datasets", "list")] == ["identity"]

    run = cli_json(
        workspace,
        "train",
        "--dataset",
        "identity",
        "--model",
        str(tiny_model),
        "--method",
        "lora",
        "--max-steps",
        "4",
        "--batch-size",
        "4",
        "--lr",
        "1e-3",
        "--lora-rank",
        "4",
        "--lora-alpha",
        "8",
        "--wait",
    )
    assert run["status"] == "completed", run.get("reason")
    assert (run["step"], run["total_steps"]) == (4, 4)
    assert run["metrics"]["train_loss"] > 0 and run["metrics"]["trainable_params"] > 0
    assert run["artifacts"][0]["kind"] == "adapter"

    said = cli_json(workspace, "chat", str(run["id"]), "--prompt", "Who are you?", "--max-new-tokens", "5")
    assert said["run_id"] == run["id"] and said == cli_json(
        workspace, "chat", str(run["id"]), "--prompt", "Who are you?", "--max-new-tokens", "5"
    )  # greedy: the same answer twice
    sampled = ("chat", str(run["id"]), "--prompt", "Who are you?", "--max-new-tokens", "8", "--temperature", "1.5")
    seeded = [cli_json(workspace, *sampled, "--seed", "3", "--system", "Be brief.")["reply"] for _ in range(2)]
    assert seeded[0] == seeded[1]  # the Playground's sampling settings: the same seed, the same answer
    proc = cli(workspace, *sampled, "--top-p", "0")
    assert proc.returncode == 2 and "setting 'top_p' must be in (0, 1]" in proc.stderr  # checked as in the UI

    shown = cli_json(workspace, "runs", "show", str(run["id"]))
    assert shown["config"]["max_steps"] == 4 and shown["config"]["learning_rate"] == 1e-3
    assert shown["progress"] == 1.0 and shown["duration_seconds"] > 0
    assert "completed" in shown["log_tail"]
    assert [r["status"] for r in cli_json(workspace, "runs", "list")] == ["completed"]

    out = cli_json(workspace, "export", str(run["id"]), "--format", "merged", "--out", str(workspace / "merged"))
    assert out["verification"]["ok"] and out["verification"]["max_abs_logit_diff"] < 1e-4
    model = AutoModelForCausalLM.from_pretrained(out["path"])
    tokenizer = AutoTokenizer.from_pretrained(out["path"])
    assert tokenizer.chat_template and model.config.vocab_size == len(tokenizer)
    assert not any("lora" in n for n, _ in model.named_parameters())  # merged: a plain model
    adapter = cli_json(workspace, "export", str(run["id"]), "--format", "adapter")
    assert adapter["zip"].endswith(".zip") and adapter["verification"]["ok"]
    again = cli_json(workspace, "export", str(run["id"]), "--format", "merged", "--out", str(workspace / "merged"))
    assert again["path"] == out["path"]  # an earlier export folder is replaced

    precious = workspace / "precious"
    precious.mkdir()
    (precious / "notes.txt").write_text("keep me")
    refused = cli(workspace, "export", str(run["id"]), "--format", "merged", "--out", str(precious), "--json")
    assert refused.returncode == 2 and "is not empty" in refused.stderr
    assert (precious / "notes.txt").read_text() == "keep me"
    refused = cli(workspace, "export", str(run["id"]), "--out", str(workspace / "runs" / str(run["id"])), "--json")
    assert refused.returncode == 2 and "inside the workspace" in refused.stderr
    assert (workspace / "runs" / str(run["id"]) / "adapter").is_dir()


def test_full_fine_tune_changes_the_weights(workspace, tiny_model, tmp_path):
    import torch

    cli_json(workspace, "datasets", "add", str(write_alpaca(tmp_path / "sums.json")))
    run = cli_json(
        workspace,
        "train",
        "--dataset",
        "sums",
        "--model",
        str(tiny_model),
        "--method",
        "full",
        "--max-steps",
        "3",
        "--lr",
        "1e-2",
        "--wait",
    )
    assert run["status"] == "completed", run.get("reason")
    assert run["artifacts"][0]["kind"] == "model"
    before = AutoModelForCausalLM.from_pretrained(tiny_model).state_dict()
    after = AutoModelForCausalLM.from_pretrained(run["artifacts"][0]["path"]).state_dict()
    assert any(not torch.equal(before[k], after[k]) for k in before)


def test_bad_input_exits_2_with_one_line_and_writes_nothing(workspace, tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"instruction": "a", "output": "b"}\n{"instruction": "c"}\n', encoding="utf-8")
    proc = cli(workspace, "datasets", "add", str(bad), "--json")
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.strip().count("\n") == 0
    assert "bad.jsonl row 2: field 'output' is missing" in proc.stderr
    assert cli_json(workspace, "datasets", "list") == []
    assert list((workspace / "datasets").iterdir()) == []

    cli_json(workspace, "datasets", "add", str(write_alpaca(tmp_path / "good.json")))
    refusals = [
        (["--dataset", "nope"], "dataset 'nope' not found"),
        (["--dataset", "good", "--lr", "-1"], "learning_rate"),
        (["--dataset", "good", "--batch-size", "0"], "batch_size"),
        (["--dataset", "good", "--model", str(tmp_path / "missing")], "model '"),
        (["--dataset", "good", "--epochs", "inf"], "epochs"),
    ]
    if not torch.cuda.is_available():  # fp16 is fine on a GPU
        refusals.append((["--dataset", "good", "--precision", "fp16"], "fp16 is not supported on CPU"))
    for args, named in refusals:
        proc = cli(workspace, "train", *args, "--json")
        assert proc.returncode == 2, proc.stderr
        assert named in proc.stderr
    assert cli_json(workspace, "runs", "list") == []


def test_unknown_run_is_a_clear_error(workspace):
    proc = cli(workspace, "runs", "show", "42", "--json")
    assert proc.returncode == 2 and "run 42 not found" in proc.stderr
    proc = cli(workspace, "export", "42", "--json")
    assert proc.returncode == 2 and "run 42 not found" in proc.stderr
    assert json.loads(cli(workspace, "runs", "list", "--json").stdout) == []
