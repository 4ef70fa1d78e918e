"""The model catalog per task and the per-task defaults a run starts from."""

import json
from pathlib import Path

import pytest

from backend.config import DEFAULT_LR, DEFAULT_MODELS, RunConfig
from backend.models.catalog import BUNDLED, models_for, resolve_model


def test_each_task_offers_its_default_model_first():
    assert models_for("sft")[0] == "SmolLM2-135M-Instruct"
    assert models_for("text-classification") == ["all-MiniLM-L6-v2"]
    images = models_for("image-classification")
    assert images[0] == "resnet18"
    assert set(images) == {"resnet18", "resnet50", "mobilenet_v3_small", "mobilenet_v3_large", "vit_b_16"}
    assert models_for("no-such-task") == []
    for task, name in DEFAULT_MODELS.items():
        assert BUNDLED[name].task == task


def test_bundled_minilm_resolves_to_its_package_folder_offline(tmp_path):
    folder = resolve_model("all-MiniLM-L6-v2", tmp_path)
    assert (folder / "model.safetensors").is_file() and (folder / "tokenizer.json").is_file()
    assert json.loads((folder / "config.json").read_text())["num_hidden_layers"] == 6
    assert not any(tmp_path.iterdir())  # used where it lies: nothing copied


def test_torchvision_architecture_resolves_to_a_small_config_folder(tmp_path):
    folder = resolve_model("mobilenet_v3_small", tmp_path)
    assert folder == tmp_path / "torchvision" / "mobilenet_v3_small"
    spec = json.loads((folder / "config.json").read_text())
    assert spec["format"] == "tuneboard-torchvision" and spec["arch"] == "mobilenet_v3_small"
    assert resolve_model("mobilenet_v3_small", tmp_path) == folder  # written once


def test_unknown_model_names_the_bundled_ones(tmp_path):
    with pytest.raises(ValueError, match="neither a bundled model .*all-MiniLM-L6-v2.*resnet18"):
        resolve_model("alexnet", tmp_path)


def test_settings_not_given_take_the_task_defaults():
    text = RunConfig.from_dict({"task": "text-classification", "dataset": "d"})
    assert (text.model, text.method, text.val_ratio, text.cutoff_len) == ("all-MiniLM-L6-v2", "full", 0.2, 128)
    assert text.lr == 1e-4
    image = RunConfig.from_dict({"task": "image-classification", "dataset": "d", "method": "freeze"})
    assert (image.model, image.method, image.image_size, image.lr) == ("resnet18", "freeze", 0, 1e-3)
    given = RunConfig.from_dict({"task": "text-classification", "model": "/m", "epochs": 1, "learning_rate": 3e-5})
    assert (given.model, given.epochs, given.lr) == ("/m", 1.0, 3e-5)
    sft = RunConfig.from_dict({"dataset": "d"})
    assert (sft.model, sft.method, sft.lr, sft.val_ratio) == ("SmolLM2-135M-Instruct", "lora", DEFAULT_LR["lora"], 0.0)


def test_image_size_is_checked():
    with pytest.raises(ValueError, match="setting 'image_size' must be 0 \\(auto\\) or 16-1024"):
        RunConfig.from_dict({"task": "image-classification", "image_size": 8})


CUSTOM_CODE = """
from transformers import LlamaConfig, LlamaForCausalLM


class TinyCustomConfig(LlamaConfig):
    model_type = "tiny-custom"


class TinyCustomForCausalLM(LlamaForCausalLM):
    config_class = TinyCustomConfig
"""


def test_a_model_with_its_own_code_trains_only_when_the_user_trusts_it(workspace, tiny_model, tmp_path):
    """trust_remote_code is off unless asked for: refused with the way out, then trained and chatted with."""
    import json
    import shutil

    from tests.conftest import cli, cli_json, write_alpaca

    custom = tmp_path / "custom-model"
    shutil.copytree(tiny_model, custom)
    (custom / "custom_llama.py").write_text(CUSTOM_CODE)
    config = json.loads((custom / "config.json").read_text())
    config["model_type"] = "tiny-custom"
    config["auto_map"] = {
        "AutoConfig": "custom_llama.TinyCustomConfig",
        "AutoModelForCausalLM": "custom_llama.TinyCustomForCausalLM",
    }
    (custom / "config.json").write_text(json.dumps(config))
    cli_json(workspace, "datasets", "add", str(write_alpaca(tmp_path / "sums.json", n=8)), "--name", "sums")
    train = ["train", "--dataset", "sums", "--model", str(custom), "--max-steps", "2", "--batch-size", "2"]

    refused = cli(workspace, *train)
    assert refused.returncode == 2
    assert "needs its own Python code" in refused.stderr and "--trust-remote-code" in refused.stderr
    assert "Traceback" not in refused.stderr
    assert cli_json(workspace, "runs", "list") == []

    run = cli_json(workspace, *train, "--trust-remote-code", "--wait")
    assert run["status"] == "completed", run.get("reason")
    log = (workspace / "runs" / str(run["id"]) / "log.txt").read_text()
    assert "runs its own Python code" in log  # the warning stays in the run's log
    reply = cli_json(workspace, "chat", str(run["id"]), "--prompt", "1+1?", "--max-new-tokens", "4")
    assert reply["run_id"] == run["id"] and isinstance(reply["reply"], str)  # the playground loads it
    merged = cli_json(workspace, "export", str(run["id"]), "--format", "merged")  # and export merges it
    assert merged["verification"]["ok"], merged["verification"]
    assert (Path(merged["path"]) / "custom_llama.py").is_file()  # the merged folder still runs with its code
