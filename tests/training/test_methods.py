"""Fine-tuning methods: which weights train under freeze / gradual / LoRA variants, and what is refused."""

from types import SimpleNamespace

import pytest
import torch

from backend.config import RunConfig
from backend.runs.preflight import preflight
from backend.tasks.causal_lm import layer_groups, skeleton
from backend.training.methods import GradualUnfreezing, add_lora, check_qlora, freeze, prepare
from tests.conftest import cli, cli_json, write_alpaca


def _model(tiny_model):
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(tiny_model)


def _trains(module) -> bool:
    return all(p.requires_grad for p in module.parameters())


def _frozen(module) -> bool:
    return not any(p.requires_grad for p in module.parameters())


def test_layer_groups_are_embeddings_then_each_layer(tiny_model):
    model = _model(tiny_model)
    groups = layer_groups(model)
    assert groups[0] is model.model.embed_tokens
    assert groups[1:] == list(model.model.layers)


def test_freeze_trains_the_top_layers_and_the_head_only(tiny_model):
    model = _model(tiny_model)
    groups = layer_groups(model)
    freeze(model, groups, top=1)
    assert _frozen(model.model.layers[0]) and _trains(model.model.layers[1])
    assert _trains(model.model.norm)
    # Tied embeddings: the one matrix is the LM head too, so it trains (see backend/training/methods.py).
    assert model.lm_head.weight is model.model.embed_tokens.weight and model.lm_head.weight.requires_grad
    freeze(model, groups, top=0)  # the head alone: a linear probe
    assert _frozen(model.model.layers[1]) and _trains(model.model.norm)


def test_gradual_unfreezes_one_group_top_down_on_schedule(tiny_model):
    model = _model(tiny_model)
    groups = layer_groups(model)
    cfg = RunConfig(dataset="d", method="gradual", unfreeze_every=2, unfreeze_unit="steps")
    (callback,) = prepare(model, cfg, groups)
    # Before training every weight is trainable, so the Trainer's optimizer holds them all.
    assert all(p.requires_grad for p in model.parameters())
    seen = []
    for step in range(0, 8):
        state = SimpleNamespace(global_step=step, epoch=0.0)
        (callback.on_train_begin if step == 0 else callback.on_step_end)(None, state, None)
        seen.append([_trains(g) for g in groups[1:]] + [_trains(model.model.norm)])
    assert seen[0] == [False, False, True]  # the head only
    assert seen[2] == [False, True, True]  # step 2: the top layer joins
    assert seen[4] == [True, True, True]  # step 4: the next one down
    assert callback.open == 3  # step 6: the embeddings group too (all groups)
    assert _trains(model.model.embed_tokens)  # tied to the head, so it trained all along


def test_gradual_by_epochs_resumes_where_it_was():
    groups = [torch.nn.Linear(2, 2) for _ in range(4)]
    model = torch.nn.Sequential(*groups)
    callback = GradualUnfreezing(model, groups, every=1, unit="epochs")
    callback.on_train_begin(None, SimpleNamespace(global_step=30, epoch=2.0), None)  # resumed in epoch 3
    assert [_trains(g) for g in groups] == [False, False, True, True]


@pytest.mark.parametrize(
    ("settings", "check"),
    [
        ({"lora_dora": True}, lambda m: any("lora_magnitude_vector" in n for n, _ in m.named_parameters())),
        ({"lora_rslora": True, "lora_rank": 4, "lora_alpha": 8}, lambda m: _scaling(m) == pytest.approx(8 / 4**0.5)),
        ({"lora_rank": 4, "lora_alpha": 8}, lambda m: _scaling(m) == pytest.approx(2.0)),
        ({"lora_targets": "q_proj,v_proj"}, lambda m: _adapted(m) == {"q_proj", "v_proj"}),
        ({}, lambda m: _adapted(m) == {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"}),
    ],
)
def test_lora_variants(tiny_model, settings, check):
    model = add_lora(_model(tiny_model), RunConfig(dataset="d", **settings), task_type="CAUSAL_LM")
    assert check(model)
    assert not any(p.requires_grad for n, p in model.named_parameters() if "lora_" not in n)


def _scaling(model) -> float:
    layer = model.base_model.model.model.layers[0].self_attn.q_proj
    return layer.scaling["default"]


def _adapted(model) -> set[str]:
    return {n.split(".")[-4] for n, _ in model.named_parameters() if "lora_A" in n}


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"lora_targets": "q_proj,attention_dense"}, "no module named attention_dense; its linear modules are"),
        ({"method": "freeze", "freeze_layers": 4}, "freeze_layers': 4 is more than the model's 3 layer groups"),
        ({"method": "qlora", "devices": "cpu"}, "qlora needs a CUDA GPU"),
        ({"devices": "cuda:7"}, "asks for a GPU but this machine has none|GPU 7 does not exist"),
        ({"precision": "fp16", "devices": "cpu"}, "fp16 is not supported on CPU"),
    ],
)
def test_preflight_refuses_what_cannot_work(tiny_model, settings, message):
    cfg = RunConfig(dataset="d", model=str(tiny_model), **settings)
    with pytest.raises(ValueError, match=message):
        preflight(cfg, tiny_model.parent)


def test_preflight_accepts_good_settings_and_builds_no_weights(tiny_model):
    preflight(RunConfig(dataset="d", model=str(tiny_model), method="freeze", freeze_layers=3), tiny_model.parent)
    model, groups = skeleton(RunConfig(dataset="d"), tiny_model)
    assert len(groups) == 3 and next(model.parameters()).device.type == "meta"


def test_qlora_refusal_names_what_to_use_instead():
    import importlib.util

    if torch.cuda.is_available() and importlib.util.find_spec("bitsandbytes"):
        check_qlora(RunConfig(dataset="d", method="qlora"))  # everything QLoRA needs is here
        return
    with pytest.raises(ValueError, match="qlora needs .*(use lora|or use lora)"):
        check_qlora(RunConfig(dataset="d", method="qlora"))


@pytest.mark.slow  # two real worker processes: ~40 s on 2 quiet cores
def test_freeze_and_gradual_train_through_the_cli(workspace, tiny_model, tmp_path):
    cli_json(workspace, "datasets", "add", str(write_alpaca(tmp_path / "add.json", n=12)), "--name", "add")
    base = ("train", "--dataset", "add", "--model", str(tiny_model), "--max-steps", "6", "--batch-size", "2", "--wait")
    frozen = cli_json(workspace, *base, "--method", "freeze", "--freeze-layers", "1")
    assert frozen["status"] == "completed", frozen.get("reason")
    # The top layer plus the head (tied embeddings + final norm) of 2 layers: fewer than all weights.
    assert 0 < frozen["metrics"]["trainable_params"] < frozen["metrics"]["total_params"]

    gradual = cli_json(
        workspace,
        *base,
        *("--method", "gradual", "--unfreeze-every", "2", "--unfreeze-unit", "steps", "--optimizer", "sgd"),
        *("--val-ratio", "0.25", "--early-stopping-patience", "3", "--save-steps", "2", "--eval-samples", "1"),
    )
    assert gradual["status"] == "completed", gradual.get("reason")
    assert "2 of 3 layer groups now train" in gradual["log_tail"]
    metrics = gradual["metrics"]
    assert metrics["optimizer"] == "sgd" and metrics["eval_perplexity"] > 1 and "eval_rouge_l" in metrics


def test_impossible_settings_are_refused_by_the_cli_before_anything_is_written(workspace, tiny_model, tmp_path):
    cli_json(workspace, "datasets", "add", str(write_alpaca(tmp_path / "add.json")), "--name", "add")
    for bad, named in [
        (("--method", "freeze", "--freeze-layers", "9"), "freeze_layers"),
        (("--lora-targets", "c_attn"), "lora_targets"),
        (("--method", "gradual", "--unfreeze-every", "0"), "unfreeze_every"),
        (("--optimizer", "lion"), "optimizer"),
        (("--early-stopping-patience", "2"), "early_stopping_patience' needs a validation set"),  # all rows train
        (
            ("--early-stopping-patience", "2", "--val-ratio", "0.2", "--early-stopping-metric", "accuracy"),
            "not 'accuracy'",
        ),
    ]:
        proc = cli(workspace, "train", "--dataset", "add", "--model", str(tiny_model), *bad)
        assert proc.returncode == 2 and named in proc.stderr.strip().splitlines()[-1], proc.stderr  # no traceback
    assert cli_json(workspace, "runs", "list") == []
    assert not (workspace / "runs").exists() or not any((workspace / "runs").iterdir())
