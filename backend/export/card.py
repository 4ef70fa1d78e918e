"""The model card (README.md) every export folder carries: what was trained, on what, how well, and how the
export was checked, so a folder copied elsewhere (or pushed to the Hub) still says where it came from."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from backend.config import RunConfig
from backend.shrink import HEADS_KEY

LOADING = {
    "merged": "AutoModelForCausalLM.from_pretrained(folder)  # or AutoModelForSequenceClassification",
    "adapter": "PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(base), folder)",
    "int8": "backend.export.int8.load_int8(folder)  # int8 weights + scales in safetensors",
    "onnx": "onnxruntime.InferenceSession(folder + '/model.onnx')",
    "onnx-int8": "onnxruntime.InferenceSession(folder + '/model.onnx')",
    "gguf-f16": "ollama create NAME -f Modelfile  # or llama.cpp: llama-cli -m model.gguf",
    "gguf-q8_0": "ollama create NAME -f Modelfile  # or llama.cpp: llama-cli -m model.gguf",
    "gguf-q4_0": "ollama create NAME -f Modelfile  # or llama.cpp: llama-cli -m model.gguf",
}
HEADS_NOTE = (
    "Some attention heads of this model were pruned (config.json: `tuneboard_attention_heads`). A stock "
    "`from_pretrained` would rebuild every head; load it with `backend.shrink.from_pretrained("
    "AutoModelForSequenceClassification, folder)` from Tuneboard, or use an ONNX export, which runs anywhere."
)
SHOWN_METRICS = 12  # final metrics listed (numbers only; per-class tables stay in Tuneboard)
# How the machine did, not the model: on the Runs page, not on the card
MACHINE_FIGURES = {"startup_seconds", "save_seconds", "checks_seconds", "eta_seconds", "sec_per_step", "cpu_threads"}


def write_card(target: Path, run: Any, fmt: str, verification: dict[str, Any]) -> None:
    """README.md in `target`: Hub front matter, then the run's settings (those not at their defaults),
    dataset, final metrics and the export's check."""
    config = run.config or {}
    given = {"task": config.get("task", "sft"), "method": config.get("method", "lora")}
    given |= {"reward": config["reward"]} if config.get("reward") else {}  # a GRPO run's defaults need one
    defaults = RunConfig.from_dict(given)
    changed = {k: v for k, v in config.items() if k in defaults.to_dict() and v != getattr(defaults, k)}
    changed |= {"reward": config["reward"]} if config.get("reward") else {}
    metrics = {
        k: v
        for k, v in (run.metrics or {}).items()
        if isinstance(v, int | float) and not isinstance(v, bool) and k not in MACHINE_FIGURES
    }
    checks = {k: v for k, v in verification.items() if isinstance(v, int | float | str | bool)}
    lines = [
        "---",
        f"base_model: {json.dumps(str(run.model))}",
        f"tags: [tuneboard, {config.get('task', 'sft')}, {run.method}]",
        "---",
        "",
        f"# {run.name} ({fmt})",
        "",
        f"Fine-tuned with Tuneboard: run {run.id}, method **{run.method}**, task **{config.get('task', 'sft')}**, "
        f"from `{run.model}` on the dataset **{config.get('dataset', '?')}**.",
        "",
        "## Settings (those not at their defaults)",
        "",
        *(f"- `{k}`: {json.dumps(v, ensure_ascii=False)}" for k, v in sorted(changed.items())),
        "",
        "## Final metrics",
        "",
        *(f"- `{k}`: {v}" for k, v in list(sorted(metrics.items()))[:SHOWN_METRICS]),
        "",
        f"## How this {fmt} export was checked",
        "",
        "Loaded back by its runtime and compared with the fp32 source on fixed inputs:",
        "",
        *(f"- `{k}`: {v}" for k, v in sorted(checks.items())),
        "",
        "## Loading",
        "",
        "```python",
        LOADING.get(fmt, ""),
        "```",
        "",
    ]
    if fmt == "merged" and (target / "config.json").is_file() and HEADS_KEY in (target / "config.json").read_text():
        lines += [HEADS_NOTE, ""]
    (target / "README.md").write_text("\n".join(lines), encoding="utf-8")
