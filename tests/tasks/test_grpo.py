"""GRPO samples answers on a tiny model, scores them with the built-in rewards and logs their curves and a
table of samples; the reward specs parse, score and refuse as documented."""

from __future__ import annotations

import json

import pytest
import torch

from backend.config import RunConfig
from backend.rewards import parse_specs, reward_functions
from backend.tasks import get_task
from backend.training.optim import optimizer, training_arguments

PROMPTS = [
    {"messages": [{"role": "user", "content": f"What is {i} plus {i}?"}], "answer": str(2 * i)} for i in range(4)
]


def test_grpo_trains_with_weighted_rewards_and_records_curves_and_samples(tiny_model, tmp_path):
    cfg = RunConfig(
        dataset="d", model=str(tiny_model), task="grpo", batch_size=4, lora_rank=4, max_steps=2,
        num_generations=2, max_completion_len=8, reward="numeric@2\nlength:1-40@0.5\nregex:<answer>",
    )  # fmt: skip
    built = get_task("grpo").build(cfg, tiny_model, PROMPTS, [], torch.float32)
    args = training_arguments(cfg, tmp_path / "run" / "checkpoints", has_eval=False, device="cpu", precision="fp32")
    trainer = built.trainer_cls(
        model=built.model, args=args, train_dataset=built.train, eval_dataset=None, data_collator=None,
        compute_metrics=None, callbacks=[], optimizer_cls_and_kwargs=optimizer(cfg, "cpu"),
    )  # fmt: skip
    trainer.train()
    assert trainer.ref_model is None  # LoRA: the reference is the adapter-free model
    logged = {k for h in trainer.state.log_history for k in h}
    for name in ("reward", "reward_std", "completions/mean_length", "rewards/numeric/mean", "rewards/length/mean"):
        assert name in logged, sorted(logged)
    assert trainer.args.reward_weights == [2.0, 0.5, 1.0]
    final = built.final_metrics(trainer)
    assert {"reward_numeric", "reward_length", "reward_regex"} <= set(final)
    logged_numeric = [h["rewards/numeric/mean"] for h in trainer.state.log_history if "rewards/numeric/mean" in h]
    assert len(logged_numeric) == 2  # the run's figure is the mean of its last logged steps, not only the last one
    assert final["reward_numeric"] == round(sum(logged_numeric) / 2, 4)
    tables = [json.loads(line) for line in (tmp_path / "run" / "samples.jsonl").read_text().splitlines()]
    assert tables[0]["step"] == 1 and {"prompt", "completion", "numeric", "length"} <= set(tables[0]["rows"][0])


def _score(spec: str, completion: str, answer: str = "") -> float:
    (func,), _ = reward_functions(parse_specs(spec))
    return func(prompts=["q"], completions=[completion], answer=[answer])[0]


@pytest.mark.parametrize(
    ("spec", "completion", "answer", "expected"),
    [
        ("exact", "<answer>42</answer>", "42", 1.0),
        ("exact", "<answer>41</answer>", "42", 0.0),
        ("numeric", "It is 1,000.0", "1000", 1.0),
        ("normalized", "<answer>The  Cat!</answer>", "the cat", 1.0),
        ("format", "<answer>7</answer>", "", 1.0),
        ("format", "so 7", "", 0.0),
        ("format", "So: <answer>7</answer>, I think", "", 0.5),  # partial credit on the way to the format
        ("length:2-5", "abcd", "", 1.0),
        ("length:2-5", "abcdef", "", 0.0),
        ("json", '{"a": 1}', "", 1.0),
        ("json", "{a: 1}", "", 0.0),
        ("contains:cat|dog", "a cat", "", 0.5),
        ("contains:cat|dog", "A Cat and a DOG", "", 1.0),  # contains and not_contains both ignore case
        ("not_contains:sorry", "Sorry, I can't", "", 0.0),
        ("not_contains:Sorry", "SORRY", "", 0.0),
        ("not_contains:sorry", "Fine.", "", 1.0),
    ],
)
def test_builtin_rewards_score_as_documented(spec, completion, answer, expected):
    assert _score(spec, completion, answer) == expected


def test_bad_reward_settings_are_refused_by_name():
    with pytest.raises(ValueError, match="setting 'reward' is empty: GRPO needs at least one reward function"):
        RunConfig(dataset="d", task="grpo")
    with pytest.raises(ValueError, match="'bogus@2' names no reward function"):
        RunConfig(dataset="d", task="grpo", reward="bogus@2")
    with pytest.raises(ValueError, match="needs a character range"):
        parse_specs("length:long")
    with pytest.raises(ValueError, match="python:FILE runs your code: allow it with --trust-remote-code"):
        RunConfig(dataset="d", task="grpo", reward="python:r.py")
    assert [(s.name, s.argument, s.weight) for s in parse_specs("regex:a@b@0.5\nexact")] == [
        ("regex", "a@b", 0.5),
        ("exact", "", 1.0),
    ]


def test_cli_joins_repeated_rewards_and_refuses_grpo_without_one(workspace, tmp_path):
    from backend.cli.parser import build_parser
    from tests.conftest import cli

    args = build_parser().parse_args(
        ["train", "--task", "grpo", "--dataset", "d", "--reward", "regex:<answer>.*?</answer>", "--reward", "exact@2"]
    )
    assert parse_specs(args.reward)[1].weight == 2.0 and args.reward.splitlines()[0] == "regex:<answer>.*?</answer>"
    refused = cli(workspace, "train", "--task", "grpo", "--dataset", "prompts")  # checked before the data
    assert refused.returncode == 2 and "setting 'reward' is empty" in refused.stderr
    assert not (workspace / "runs").exists() or not any((workspace / "runs").iterdir())
