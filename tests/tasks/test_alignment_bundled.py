"""Each preference and RL task (dpo, orpo, kto, reward, grpo) takes real steps on the bundled
SmolLM2-135M-Instruct with TRL's trainers: short rows, a small batch, 2 steps each (slow: about a
minute on 2 CPU cores alone)."""

from __future__ import annotations

import json
import math

import pytest
import torch

from backend.config import RunConfig
from backend.models.catalog import resolve_model
from backend.tasks import get_task
from backend.training.optim import optimizer, training_arguments
from tests.conftest import ROOT

pytestmark = pytest.mark.slow

CONCISE = [json.loads(line) for line in (ROOT / "examples" / "concise" / "train.jsonl").read_text().splitlines()]
ARITHMETIC = [json.loads(line) for line in (ROOT / "examples" / "arithmetic" / "train.jsonl").read_text().splitlines()]
PAIRS = [
    {"messages": [{"role": "user", "content": r["prompt"]}], "chosen": r["chosen"], "rejected": r["rejected"]}
    for r in sorted(CONCISE, key=lambda r: len((r["prompt"] + r["rejected"]).encode()))[:6]
]  # the shortest in bytes (Chinese takes more tokens per character): fast steps
KTO = [{"messages": p["messages"], "completion": p["chosen" if i % 2 else "rejected"], "desirable": bool(i % 2)}
       for i, p in enumerate(PAIRS)]  # fmt: skip
PROMPTS = [{"messages": [{"role": "user", "content": r["prompt"]}], "answer": r["answer"]} for r in ARITHMETIC[:4]]
# task -> (rows, a curve TRL logs for it, settings)
TASKS = {
    "dpo": (PAIRS, "rewards/margins", {}),
    "orpo": (PAIRS, "log_odds_ratio", {}),
    "kto": (KTO, "kl", {}),
    "reward": (PAIRS, "accuracy", {}),
    "grpo": (PROMPTS, "rewards/format/mean", {"reward": "format\nnumeric@2", "num_generations": 2,
                                              "max_completion_len": 8}),
}  # fmt: skip


def test_each_task_trains_steps_on_the_bundled_model(tmp_path, shared_models_dir, tasks=tuple(TASKS)):
    folder = resolve_model("SmolLM2-135M-Instruct", shared_models_dir)
    for task in tasks:
        rows, curve, settings = TASKS[task]
        cfg = RunConfig(dataset="d", task=task, batch_size=2, lora_rank=4, max_steps=2, cutoff_len=96, **settings)
        built = get_task(task).build(cfg, folder, rows, [], torch.float32)
        before = {n: p.detach().clone() for n, p in built.model.named_parameters() if p.requires_grad}
        args = training_arguments(cfg, tmp_path / task / "checkpoints", has_eval=False, device="cpu", precision="fp32")
        trainer = built.trainer_cls(
            model=built.model,
            args=args,
            train_dataset=built.train,
            eval_dataset=None,
            data_collator=built.collator,
            compute_metrics=built.compute_metrics,
            callbacks=[],
            optimizer_cls_and_kwargs=optimizer(cfg, "cpu"),
        )
        trainer.train()
        logged = [h for h in trainer.state.log_history if "loss" in h]
        assert trainer.state.global_step == 2, task
        assert logged and all(math.isfinite(h["loss"]) for h in logged), (task, logged)
        assert any(curve in h for h in trainer.state.log_history), (task, curve, trainer.state.log_history[-1])
        moved = [n for n, p in built.model.named_parameters() if n in before and not torch.equal(p, before[n])]
        # (GRPO learns nothing from a step whose answers all score the same, which 2 answers often do)
        assert moved or task == "grpo", f"{task}: no trainable weight changed in 2 steps"
