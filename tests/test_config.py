"""RunConfig: the one place defaults live; bad settings are refused with the setting's name."""

import pytest

from backend.config import DEFAULT_LR, RunConfig


def test_defaults_work_without_touching_anything():
    cfg = RunConfig(dataset="identity")
    assert cfg.model == "SmolLM2-135M-Instruct"
    assert cfg.method == "lora"
    assert cfg.lr == DEFAULT_LR["lora"]
    assert RunConfig(dataset="x", method="full").lr == DEFAULT_LR["full"]
    assert RunConfig(dataset="x", learning_rate=1e-3).lr == 1e-3


@pytest.mark.parametrize(
    ("settings", "named"),
    [
        ({"learning_rate": -1e-4}, "learning_rate"),
        ({"batch_size": 0}, "batch_size"),
        ({"epochs": 0}, "epochs"),
        ({"cutoff_len": 4}, "cutoff_len"),
        ({"lora_rank": 0}, "lora_rank"),
        ({"method": "magic"}, "method"),
        ({"precision": "fp8"}, "precision"),
        ({"batch_size": "eight"}, "batch_size"),
        ({"batch_size": 2.5}, "batch_size"),
        ({"val_ratio": 0.95}, "val_ratio"),
        ({"lora_dropout": 1.0}, "lora_dropout"),
        ({"epochs": float("inf")}, "epochs"),
        ({"learning_rate": float("nan")}, "learning_rate"),
        ({"lora_targets": " , "}, "lora_targets"),
    ],
)
def test_bad_settings_are_refused_with_their_name(settings, named):
    with pytest.raises(ValueError, match=named):
        RunConfig.from_dict({"dataset": "d", **settings})


def test_unknown_setting_is_named():
    with pytest.raises(ValueError, match="lerning_rate"):
        RunConfig.from_dict({"dataset": "d", "lerning_rate": 1e-4})


def test_ui_values_are_coerced_and_round_trip():
    cfg = RunConfig.from_dict({"dataset": "d", "batch_size": 4.0, "epochs": "2", "packing": "false", "max_steps": None})
    assert (cfg.batch_size, cfg.epochs, cfg.packing, cfg.max_steps) == (4, 2.0, False, 0)
    assert RunConfig.from_dict(cfg.to_dict()) == cfg


def test_max_steps_alone_is_enough():
    assert RunConfig(dataset="d", epochs=0, max_steps=5).max_steps == 5


@pytest.mark.parametrize(
    ("settings", "named"),
    [({"max_new_tokens": 0}, "max_new_tokens"), ({"temperature": -1}, "temperature"), ({"top_p": 0}, "top_p")],
)
def test_bad_generation_settings_are_refused(settings, named):
    from backend.config import GenerationConfig

    with pytest.raises(ValueError, match=named):
        GenerationConfig(**settings)


@pytest.mark.parametrize(
    ("settings", "named"),
    [
        ({"optimizer": "lion"}, "optimizer"),
        ({"method": "gradual", "unfreeze_every": 0}, "unfreeze_every"),
        ({"freeze_layers": -1}, "freeze_layers"),
        ({"devices": "gpu0"}, "devices"),
        ({"devices": "cuda:0,x"}, "devices"),
        ({"qlora_bits": 3}, "qlora_bits"),
        ({"nproc": 0}, "nproc"),
        ({"momentum": 1.5}, "momentum"),
        ({"max_grad_norm": -1}, "max_grad_norm"),
        ({"early_stopping_patience": -2}, "early_stopping_patience"),
        ({"devices": "cuda:0,1", "nproc": 3}, "nproc"),
        ({"unfreeze_unit": "hours"}, "unfreeze_unit"),
    ],
)
def test_bad_method_optimizer_and_device_settings_are_refused(settings, named):
    with pytest.raises(ValueError, match=named):
        RunConfig.from_dict({"dataset": "d", **settings})


def test_each_setting_says_where_it_applies():
    assert RunConfig.applies("lora_rank", method="lora") and RunConfig.applies("lora_rank", method="qlora")
    assert not RunConfig.applies("lora_rank", method="full")
    assert RunConfig.applies("freeze_layers", method="freeze") and not RunConfig.applies("freeze_layers", method="lora")
    assert RunConfig.applies("momentum", optimizer="sgd") and not RunConfig.applies("momentum", optimizer="adamw")
    assert not RunConfig.applies("cutoff_len", task="image-classification")
    assert RunConfig.applies("epochs", task="image-classification", method="gradual")  # applies everywhere
    assert RunConfig.where("unfreeze_every") == "method: gradual" and RunConfig.where("epochs") == ""


def test_processes_follow_the_listed_gpus_or_nproc():
    assert RunConfig(dataset="d").world_size == 1
    assert RunConfig(dataset="d", nproc=2).world_size == 2
    assert RunConfig(dataset="d", devices="cuda:0,3").world_size == 2
    assert RunConfig(dataset="d", devices="cuda:0,3").gpu_ids == [0, 3]
