"""dpo, orpo, kto and reward train a few steps on a tiny model with TRL's trainers and log their curves;
LoRA keeps no reference copy; a DPO run starts from an SFT run, cancels, resumes and exports (slow)."""

from __future__ import annotations

import json
import math
import subprocess
import sys

import pytest
import torch

from backend.config import RunConfig
from backend.tasks import get_task
from backend.training.optim import optimizer, training_arguments
from tests.conftest import ROOT, cli_json, write_alpaca

PAIRS = [
    {
        "messages": [{"role": "user", "content": f"What is {i} plus {i}?"}],
        "chosen": f"{2 * i}.",
        "rejected": f"Let me think about it for a while, maybe {2 * i + 1}.",
    }
    for i in range(8)
]
KTO = [
    {"messages": p["messages"], "completion": p["chosen" if i % 2 else "rejected"], "desirable": bool(i % 2)}
    for i, p in enumerate(PAIRS)
]


def _train(tiny_model, tmp_path, task, rows, **settings):
    cfg = RunConfig(dataset="d", model=str(tiny_model), task=task, batch_size=4, lora_rank=4, max_steps=2, **settings)
    built = get_task(task).build(cfg, tiny_model, rows[:6], rows[6:], torch.float32)
    args = training_arguments(cfg, tmp_path / "out", has_eval=True, device="cpu", precision="fp32")
    trainer = built.trainer_cls(
        model=built.model,
        args=args,
        train_dataset=built.train,
        eval_dataset=built.eval,
        data_collator=built.collator,
        compute_metrics=built.compute_metrics,
        callbacks=[],
        optimizer_cls_and_kwargs=optimizer(cfg, "cpu"),
    )
    trainer.train()
    logged = {k for h in trainer.state.log_history for k in h}
    return built, trainer, logged


@pytest.mark.parametrize("loss_type", ["sigmoid", "ipo"])
def test_dpo_lora_logs_rewards_and_uses_the_adapter_free_model_as_reference(tiny_model, tmp_path, loss_type):
    built, trainer, logged = _train(tiny_model, tmp_path, "dpo", PAIRS, loss_type=loss_type, beta=0.2)
    assert trainer.ref_model is None  # the reference is the policy with its adapter switched off
    assert type(trainer).__name__ == "DPOTrainer" and trainer.args.loss_type == [loss_type] and trainer.beta == 0.2
    for name in ("rewards/chosen", "rewards/rejected", "rewards/margins", "rewards/accuracies"):
        assert name in logged and f"eval_{name}" in logged
    assert 0 <= built.final_metrics(trainer)["eval_rewards_accuracy"] <= 1


def test_dpo_full_keeps_a_frozen_reference(tiny_model, tmp_path):
    built, trainer, _ = _train(tiny_model, tmp_path, "dpo", PAIRS, method="full")
    assert trainer.ref_model is not None and not any(p.requires_grad for p in trainer.ref_model.parameters())
    moved = [p for (_, p), (_, r) in zip(trainer.model.named_parameters(), trainer.ref_model.named_parameters(),
                                          strict=True) if not torch.equal(p.detach(), r.detach())]  # fmt: skip
    assert moved  # the policy trained, the reference did not


@pytest.mark.parametrize(("task", "rows", "curve"), [("orpo", PAIRS, "log_odds_ratio"), ("kto", KTO, "kl")])
def test_orpo_and_kto_train_and_log(tiny_model, tmp_path, task, rows, curve):
    _, trainer, logged = _train(tiny_model, tmp_path, task, rows)
    assert any(curve in k for k in logged), sorted(logged)
    assert math.isfinite(trainer.state.log_history[-1]["train_loss"])


def test_reward_model_scores_chosen_against_rejected(tiny_model, tmp_path):
    built, trainer, logged = _train(tiny_model, tmp_path, "reward", PAIRS)
    assert type(built.model.get_base_model()).__name__ == "LlamaForSequenceClassification"
    assert "eval_accuracy" in logged and 0 <= built.final_metrics(trainer)["eval_rewards_accuracy"] <= 1


def test_bad_settings_are_refused_before_anything_starts():
    with pytest.raises(ValueError, match="setting 'loss_type'"):
        RunConfig(dataset="d", task="dpo", loss_type="nope")
    with pytest.raises(ValueError, match="setting 'from_run' applies to dpo, orpo, kto, grpo runs only"):
        RunConfig(dataset="d", task="reward", from_run=3)


@pytest.mark.slow
def test_dpo_from_an_sft_run_cancels_resumes_and_exports(tmp_path, tiny_model):
    from backend.runs.query import curve
    from backend.services import Services
    from db import Run
    from db.models import utcnow

    ws = tmp_path / "ws"
    cli_json(ws, "datasets", "add", str(write_alpaca(tmp_path / "sums.json", n=8)), "--name", "sums")
    pairs = tmp_path / "pairs.jsonl"
    pairs.write_text("\n".join(json.dumps({"prompt": p["messages"][0]["content"], **p} | {"messages": None}) for p in
                               PAIRS).replace(', "messages": null', ""))  # fmt: skip
    cli_json(ws, "datasets", "add", str(pairs), "--name", "pairs")
    sft = cli_json(ws, "train", "--dataset", "sums", "--model", str(tiny_model), "--max-steps", "2", "--wait")
    assert sft["status"] == "completed", sft["reason"]

    services = Services.open(ws)
    from backend.runs.queue import create_run

    cfg = RunConfig.from_dict(
        {"dataset": "pairs", "task": "dpo", "from_run": sft["id"], "max_steps": 3, "save_steps": 1, "batch_size": 4}
        | {"val_ratio": 0.25, "lora_rank": 4, "beta": 0.2}
    )
    run_id = create_run(services.database, services.workspace, cfg).id
    with services.database.session() as s:  # a worker told to stop after its first step
        run = s.get(Run, run_id)
        run.status, run.cancel_requested_at = "running", utcnow()
    assert run.config["model"] == str(ws.resolve() / "runs" / str(sft["id"]) / "merged")
    worker = [sys.executable, "-m", "backend.runs.worker", str(run_id), "--workspace", str(ws)]
    subprocess.run(worker, cwd=ROOT, check=True, timeout=300)
    stopped = cli_json(ws, "runs", "show", str(run_id))
    assert stopped["status"] == "cancelled" and stopped["step"] == 1

    done = cli_json(ws, "runs", "resume", str(run_id), "--wait", timeout=300)
    assert done["status"] == "completed" and done["step"] == 3, done["reason"]
    assert 0 <= done["metrics"]["eval_rewards_accuracy"] <= 1
    assert [step for step, _ in curve(services.database, run_id, "rewards/margins")] == [1, 2, 3]
    exported = cli_json(ws, "export", str(run_id), "--format", "merged")
    assert exported["verification"]["ok"]
