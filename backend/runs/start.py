"""Where a preference or RL run starts: a completed SFT run of this workspace (`from_run`) as its model.

A run that trained all weights saved `model/`, which is used as it is. A LoRA run's adapter is
merged into its base once, into the SFT run's folder (`merged/`), and reused by later runs. The
new run's `model` becomes that folder, so its exports, playground and resumes load what it trained.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
from pathlib import Path

from backend.config import RunConfig
from backend.workspace import Workspace
from db import Database, Run, RunStatus

SFT_TASKS = ("sft", "dpo", "orpo", "kto", "grpo")  # causal LMs a policy can start from


def starting_point(database: Database, workspace: Workspace, cfg: RunConfig) -> RunConfig:
    """`cfg` with `model` set to the folder of run `from_run`'s model (unchanged when from_run is 0)."""
    if cfg.task == "grpo" and "reward_model" in cfg.reward:
        cfg = dataclasses.replace(cfg, reward=_reward_folders(database, workspace, cfg.reward))
    if not cfg.from_run:
        return cfg
    run = _run(database, cfg.from_run, "from_run")
    if run.task not in SFT_TASKS:
        raise ValueError(f"setting 'from_run': run {run.id} is a {run.task} run; start from an SFT (chat) run")
    base, adapter, trusted = _folders(workspace, run)
    folder = base if adapter is None else _merged(base, adapter, workspace.run_dir(run.id) / "merged", trusted)
    return dataclasses.replace(cfg, model=str(folder), trust_remote_code=cfg.trust_remote_code or trusted)


def _merged(base: Path, adapter: Path, target: Path, trusted: bool) -> Path:
    """The adapter merged into its base, written once (atomically) next to the adapter."""
    if (target / "config.json").is_file():
        return target
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32, trust_remote_code=trusted)
    merged = PeftModel.from_pretrained(model, adapter).merge_and_unload()
    staging = target.with_name(f".merged-{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)
    merged.save_pretrained(staging)
    AutoTokenizer.from_pretrained(adapter if (adapter / "tokenizer_config.json").is_file() else base).save_pretrained(
        staging
    )
    try:
        staging.rename(target)
    except OSError:  # another run merged it first
        shutil.rmtree(staging, ignore_errors=True)
    return target


def _reward_folders(database: Database, workspace: Workspace, text: str) -> str:
    """`reward_model:RUN` lines with the reward run's saved model folder in place of its id."""
    from backend.rewards import parse_specs

    lines = []
    for spec in parse_specs(text):
        arg = spec.argument.strip()
        if spec.name == "reward_model" and arg.isdigit():
            run = _run(database, int(arg), "reward")
            if run.task != "reward":
                raise ValueError(f"setting 'reward': run {arg} is not a reward run; train one with --task reward")
            base, adapter, _ = _folders(workspace, run)
            arg = str(adapter or base)
        lines.append(f"{spec.name}:{arg}@{spec.weight}" if arg else f"{spec.name}@{spec.weight}")
    return "\n".join(lines)


def _run(database: Database, run_id: int, setting: str) -> Run:
    """A completed run (read here, not through backend.runs.queue, which calls this module)."""
    with database.session() as s:
        run = s.get(Run, run_id)
        if run is None:
            raise ValueError(f"setting '{setting}': run {run_id} does not exist; give a completed run's id")
        if run.status != RunStatus.completed:
            raise ValueError(f"setting '{setting}': run {run_id} is {run.status.value}; only a completed run can")
        s.expunge(run)
        return run


def _folders(workspace: Workspace, run: Run) -> tuple[Path, Path | None, bool]:
    """(base model folder, adapter folder or None, whether its code may run), as backend/runs/results.py gives."""
    from backend.models.catalog import resolve_model

    run_dir = workspace.run_dir(run.id)
    trusted = bool((run.config or {}).get("trust_remote_code"))
    if (run_dir / "adapter").is_dir():
        return resolve_model(run.model, workspace.models_dir, trusted), run_dir / "adapter", trusted
    if (run_dir / "model").is_dir():
        return run_dir / "model", None, trusted
    raise ValueError(f"run {run.id} has no saved model in {run_dir}")
