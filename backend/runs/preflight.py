"""Checks that need the machine or the model, run before a run is queued (nothing is written on error).

`RunConfig` checks each value alone; `preflight` checks what depends on this machine (GPUs, bf16,
bitsandbytes) and on the chosen model (LoRA module names, how many layers freeze can train):

    preflight(cfg, workspace.models_dir)   # raises ValueError naming the setting and what to do

It imports torch only when a setting needs it, so a default `train` from the CLI stays quick.
"""

from __future__ import annotations

from pathlib import Path

from backend.config import RunConfig


def preflight(cfg: RunConfig, models_dir: Path) -> None:
    """Refuse settings that cannot work on this machine or this model.

    Module names and layer counts come from the model's skeleton, built on the meta device (no
    weights, well under a second), when the task module offers `skeleton(cfg, model_dir)` and the
    model's folder exists (a bundled model not converted yet is checked by the worker instead).
    """
    if cfg.devices != "auto" or cfg.precision != "auto" or cfg.method == "qlora" or cfg.nproc > 1:
        from backend.devices import check_devices

        check_devices(cfg)
    if cfg.method == "qlora":
        from backend.training.methods import check_qlora

        check_qlora(cfg)
    custom_targets = cfg.method in ("lora", "qlora") and cfg.lora_targets.strip() != "all-linear"
    if not (custom_targets or cfg.method in ("freeze", "gradual")):
        return
    from backend.models.catalog import BUNDLED, is_materialized, resolve_model
    from backend.tasks import get_task
    from backend.training.methods import check_layers, lora_targets

    skeleton = getattr(get_task(cfg.task), "skeleton", None)
    if skeleton is None or (cfg.model in BUNDLED and not is_materialized(cfg.model, models_dir)):
        return  # the worker checks the real model
    model, groups = skeleton(cfg, resolve_model(cfg.model, models_dir, cfg.trust_remote_code))
    if custom_targets:
        lora_targets(model, cfg)
    check_layers(cfg, groups)
