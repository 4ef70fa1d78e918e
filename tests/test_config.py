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
