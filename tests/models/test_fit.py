"""Will it fit: the estimate's parts follow the settings, and a run that would not fit is refused with advice."""

import math

import pytest

from backend.config import RunConfig
from backend.models.fit import available_mb, check_fit, estimate_for, estimate_run
from tests.conftest import cli_json, write_alpaca


def _fit(tiny_model, **settings) -> dict:
    return estimate_run(RunConfig(dataset="d", model=str(tiny_model), **settings), tiny_model, device="cpu")


def test_the_estimate_follows_method_batch_and_checkpointing(tiny_model):
    import torch
    from transformers import AutoModelForCausalLM

    total = sum(p.numel() for p in AutoModelForCausalLM.from_pretrained(tiny_model).parameters())
    full = _fit(tiny_model, method="full", precision="fp32", batch_size=4, cutoff_len=256)
    assert full["parts"]["weights"] == round(total * 4 / 2**20, 2)  # exact: counted on the meta-device skeleton
    assert full["parts"]["optimizer"] == round(total * 8 / 2**20, 2)  # AdamW: two fp32 moments per weight
    lora = _fit(tiny_model, method="lora", lora_rank=2, precision="fp32", batch_size=4, cutoff_len=256)
    assert lora["parts"]["optimizer"] < full["parts"]["optimizer"] / 4  # the adapter is a small share
    double = _fit(tiny_model, method="lora", lora_rank=2, precision="fp32", batch_size=8, cutoff_len=256)
    assert double["parts"]["activations"] == pytest.approx(2 * lora["parts"]["activations"], rel=0.02)
    kept = _fit(
        tiny_model, method="lora", lora_rank=2, precision="fp32", batch_size=8, cutoff_len=256, grad_checkpointing=True
    )
    assert kept["parts"]["activations"] < double["parts"]["activations"]
    assert torch.get_default_dtype() == torch.float32


def test_a_run_that_cannot_fit_is_refused_with_what_to_change(tiny_model, services, tmp_path):
    from backend.data import import_file
    from backend.runs.queue import create_run

    ds = import_file(services.database, services.workspace, write_alpaca(tmp_path / "d.json", n=8), name="d")
    longest = ds.stats["max_chars"]  # batches are as long as the longest row, not cutoff_len

    def fit(batch: int) -> dict:
        cfg = RunConfig(dataset="d", model=str(tiny_model), method="full", batch_size=batch, cutoff_len=4096)
        return estimate_for(cfg, tiny_model.parent, longest)

    assert fit(1)["seq_len"] == longest + 32 < 4096
    per_example = fit(2)["estimate_mb"] - fit(1)["estimate_mb"]
    free = available_mb("cpu", RunConfig())
    batch = math.ceil(free / per_example) * 2  # twice what this machine holds, whatever its memory
    cfg = RunConfig(dataset="d", model=str(tiny_model), method="full", batch_size=batch, cutoff_len=4096)
    with pytest.raises(ValueError, match="will not fit") as refused:
        create_run(services.database, services.workspace, cfg)
    advice = str(refused.value)
    assert "method lora" in advice and "gradient checkpointing" in advice and f"batch size {batch // 2}" in advice
    assert check_fit(RunConfig(dataset="d", model=str(tiny_model)), services.workspace.models_dir)["fits"]
    from backend.runs.queue import list_runs

    assert list_runs(services.database) == []  # nothing queued


def test_models_fit_cli(workspace, tiny_model, tmp_path):
    settings = ["--model", str(tiny_model), "--method", "lora", "--batch-size", "2", "--cutoff-len", "2048"]
    out = cli_json(workspace, "models", "fit", *settings)
    assert set(out) >= {"estimate_mb", "available_mb", "fits", "advice"} and out["fits"] and out["advice"] == ""
    assert out["parts"]["weights"] > 0 and out["estimate_mb"] <= sum(out["parts"].values()) + 1
    assert out["seq_len"] == 2048
    # with a dataset, as `train` checks it: sequences no longer than its longest row (and the same answer)
    added = cli_json(workspace, "datasets", "add", str(write_alpaca(tmp_path / "d.json", n=8)), "--name", "d")
    sized = cli_json(workspace, "models", "fit", "--dataset", "d", *settings)
    assert sized["seq_len"] == added["stats"]["max_chars"] + 32 < 2048
    assert (
        sized["parts"]["activations"] < out["parts"]["activations"]
        and sized["parts"]["weights"] == out["parts"]["weights"]
    )


def test_the_model_counts_are_kept_until_its_files_change(tiny_model, tmp_path):
    """A second check of the same model reads its counts from the cache (no skeleton, no transformers
    model classes: a `train` from the CLI is queued in seconds); editing the model's files recounts."""
    import json
    import shutil

    model = tmp_path / "model"
    shutil.copytree(tiny_model, model)
    cache = tmp_path / "cache"
    cfg = RunConfig(dataset="d", model=str(model), method="full", precision="fp32")
    first = estimate_run(cfg, model, device="cpu", cache_dir=cache)
    (entry,) = cache.glob("*.json")
    kept = json.loads(entry.read_text())
    kept["summary"]["total"] *= 2  # what the cache says is what the next check uses
    entry.write_text(json.dumps(kept))
    assert estimate_run(cfg, model, device="cpu", cache_dir=cache)["parts"]["weights"] == pytest.approx(
        2 * first["parts"]["weights"], abs=0.01
    )
    config = json.loads((model / "config.json").read_text())
    config["num_hidden_layers"] = 1  # a changed model is counted again
    (model / "config.json").write_text(json.dumps(config))
    smaller = estimate_run(cfg, model, device="cpu", cache_dir=cache)
    assert smaller["parts"]["weights"] < first["parts"]["weights"]


def test_the_estimate_covers_preference_and_rl_tasks(tiny_model):
    common = {"precision": "fp32", "batch_size": 4, "cutoff_len": 128}
    sft = _fit(tiny_model, method="lora", **common)
    dpo_lora = _fit(tiny_model, task="dpo", method="lora", **common)
    assert dpo_lora["parts"]["reference"] == 0  # the reference is the model with its adapter switched off
    # chosen and rejected double the sequences; TRL's pass over them keeps about half per token (fitted to a peak)
    assert sft["parts"]["activations"] < dpo_lora["parts"]["activations"] < 2 * sft["parts"]["activations"]
    dpo_full = _fit(tiny_model, task="dpo", method="full", **common)
    assert dpo_full["parts"]["reference"] == dpo_full["parts"]["weights"]  # a frozen second copy
    assert _fit(tiny_model, task="orpo", method="full", **common)["parts"]["reference"] == 0  # ORPO has no reference
    grpo = {"task": "grpo", "reward": "format", "num_generations": 4, **common}
    short = _fit(tiny_model, method="lora", max_completion_len=32, **grpo)
    long = _fit(tiny_model, method="lora", max_completion_len=256, **grpo)
    assert long["parts"]["activations"] > 2 * short["parts"]["activations"]  # prompt + sampled answer per sequence
    assert _fit(tiny_model, method="full", beta=0.0, **grpo)["parts"]["reference"] == 0  # no KL term: no copy
    with_kl = _fit(tiny_model, method="full", beta=0.04, **grpo)
    assert with_kl["parts"]["reference"] == with_kl["parts"]["weights"]


def test_an_image_classifier_is_estimated_with_its_heads_weights(tmp_path):
    """A torchvision network names its head module by a string: the count finds the module (it once read the
    name as the head and gave up with a warning, so image runs were queued with no estimate at all)."""
    from backend.models.catalog import resolve_model

    cfg = RunConfig.from_dict({"task": "image-classification", "model": "resnet18", "dataset": "d", "method": "lora"})
    out = estimate_run(cfg, resolve_model("resnet18", tmp_path, False), device="cpu")
    assert out["estimate_mb"] > 11.6e6 * 4 / 2**20  # at least the fp32 weights of its 11.7 M parameters
    assert out["parts"]["weights"] > 0 and out["fits"] is True
