"""The default length adapts to the data: small sets train at least min_steps, large sets keep their epochs."""

from backend.config import RunConfig
from backend.training.length import planned_steps, trainer_max_steps


def test_a_small_set_gets_the_floor_and_a_large_one_keeps_its_epochs():
    cfg = RunConfig(dataset="d")  # every setting default: 4 epochs, batch 8, at least 60 steps
    assert planned_steps(cfg, 20) == 60 and trainer_max_steps(cfg, 20) == 60  # 3 steps an epoch: 20 epochs
    assert planned_steps(cfg, 120) == 60 and trainer_max_steps(cfg, 120) == -1  # 4 epochs are 60 already
    assert planned_steps(cfg, 8000) == 4000 and trainer_max_steps(cfg, 8000) == -1  # not over-trained


def test_max_steps_wins_and_min_steps_zero_counts_epochs_only():
    assert planned_steps(RunConfig(dataset="d", max_steps=7), 20) == 7
    assert trainer_max_steps(RunConfig(dataset="d", max_steps=7), 20) == 7
    off = RunConfig(dataset="d", min_steps=0)
    assert planned_steps(off, 20) == 12 and trainer_max_steps(off, 20) == -1  # the old default: 12 steps


def test_classifiers_keep_their_epochs_by_default():
    cfg = RunConfig.from_dict({"dataset": "d", "task": "text-classification"})
    assert cfg.min_steps == 0 and planned_steps(cfg, 20) == 10  # 2 steps an epoch at batch 16, 5 epochs
