"""Settings of preference and RL runs (dpo, orpo, kto, reward, grpo), as RunConfig fields.

backend/config.py declares them with these Field objects (one line each) and calls `validate`;
the tasks themselves live in backend/tasks/preference.py and backend/tasks/grpo.py.

    beta: float = alignment.BETA
"""

from __future__ import annotations

from dataclasses import field
from typing import Any

PAIRED = ("dpo", "orpo", "reward")  # trained on chosen/rejected pairs (dataset task "preference")
ALIGNMENT_TASKS = (*PAIRED, "kto", "grpo")
DATA_TASK = {"dpo": "preference", "orpo": "preference", "reward": "preference", "kto": "kto", "grpo": "prompts"}
# TRL's DPO loss names: sigmoid (DPO), ipo, robust (label noise), sigmoid_norm (length-normalised, SimPO-style),
# hinge (SLiC), apo_zero (anchored).
LOSS_TYPES = ("sigmoid", "ipo", "robust", "sigmoid_norm", "hinge", "apo_zero")
POLICY_TASKS = ("dpo", "orpo", "kto", "grpo")  # tasks that start from an SFT run's model
CHAT_TASKS = ("sft", *POLICY_TASKS)  # their runs save a chat model: playground, export and predict as SFT's


def base_task(task: str) -> str:
    """The catalog task whose models a run of `task` starts from: chat models for every alignment task."""
    return "sft" if task in ALIGNMENT_TASKS else task


def run_task(data_task: str, current: str) -> str:
    """The run task a `data_task` dataset trains: `current` when it fits (orpo on pairs), else the first that does."""
    if DATA_TASK.get(current) == data_task:
        return current
    return next((t for t, d in DATA_TASK.items() if d == data_task), data_task)


def model_task(task: str) -> str:
    """The kind of model a run of `task` saves: 'sft' (a chat model) for preference/RL policies."""
    return "sft" if task in POLICY_TASKS else task


TASK_HELP = (  # RunConfig.task's hint (kept here: config.py is at its size limit)
    "sft: instruction / chat; text-classification; image-classification (torchvision); "
    "dpo, orpo, reward (preference pairs), kto (good/bad answers), grpo (prompts + rewards)."
)


def _check(ok: bool, name: str, what: str) -> None:
    if not ok:
        raise ValueError(f"setting '{name}' {what}")


def _when(help: str, *tasks: str) -> dict[str, Any]:
    return {"help": help, "when": {"task": tasks}}


BETA = field(
    default=0.1,
    metadata=_when(
        "How far the model may move from the reference: higher keeps it closer (ORPO: weight of the odds-ratio "
        "loss; GRPO: weight of the KL penalty, 0 (its default) turns it off).",
        "dpo",
        "orpo",
        "kto",
        "grpo",
    ),
)
LOSS_TYPE = field(
    default="sigmoid",
    metadata=_when(
        "DPO loss: sigmoid (DPO), ipo, robust (noisy labels), sigmoid_norm (length-normalised, SimPO-style), "
        "hinge, apo_zero.",
        "dpo",
    ),
)
FROM_RUN = field(
    default=0,
    metadata=_when(
        "Start from this completed SFT run's model (policy and frozen reference) instead of `model` (0: off).",
        *POLICY_TASKS,
    ),
)
NUM_GENERATIONS = field(
    default=4, metadata=_when("GRPO: answers sampled per prompt, compared with each other.", "grpo")
)
MAX_COMPLETION_LEN = field(default=64, metadata=_when("GRPO: longest sampled answer, in tokens.", "grpo"))
REWARD = field(
    default="",
    metadata=_when(
        "GRPO reward functions, one NAME[:ARGUMENT][@WEIGHT] per line (CLI: --reward, repeated), e.g. "
        "'regex:<answer>.*?</answer>', 'exact@2', 'length:20-200@0.5'. Names: exact, numeric, normalized, "
        "regex, format, length, json, contains, not_contains, reward_model:RUN, python:FILE (trust_remote_code).",
        "grpo",
    ),
)


def validate(cfg: Any) -> None:
    """The alignment settings of a RunConfig; raises ValueError naming the setting."""
    _check(cfg.loss_type in LOSS_TYPES, "loss_type", f"must be one of {', '.join(LOSS_TYPES)}")
    _check(cfg.beta >= 0, "beta", "must be 0 or more")
    _check(cfg.from_run >= 0, "from_run", "must be a run id (0: start from `model`)")
    _check(cfg.num_generations >= 2, "num_generations", "must be at least 2 (GRPO compares answers to one prompt)")
    _check(8 <= cfg.max_completion_len <= 4096, "max_completion_len", "must be between 8 and 4096 tokens")
    if cfg.task == "grpo":
        from backend.rewards import parse_specs

        specs = parse_specs(cfg.reward)  # refuses unknown names and bad weights
        _check(bool(specs), "reward", "is empty: GRPO needs at least one reward function, e.g. --reward exact")
        if any(s.name == "python" for s in specs):
            _check(cfg.trust_remote_code, "reward", "python:FILE runs your code: allow it with --trust-remote-code")
        _check(
            (cfg.batch_size * cfg.grad_accum) % cfg.num_generations == 0,
            "batch_size",
            f"times grad_accum must be a multiple of num_generations ({cfg.num_generations}) for GRPO",
        )
    if cfg.from_run and cfg.task not in POLICY_TASKS:
        _check(False, "from_run", f"applies to {', '.join(POLICY_TASKS)} runs only")
