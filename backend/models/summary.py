"""What the memory estimate needs to know about a model, counted once on its weightless skeleton and kept.

    summarize(cfg, model_dir, cache_dir) -> dict | None   # None: the task has no skeleton to count

Building a skeleton imports transformers' model classes (5-10 s on a small CPU) for numbers that only
change when the model's files do: parameter counts (all, per layer group, the classification head),
the in+out features of every Linear layer a LoRA adapter would wrap, the shape facts activations
scale with, and for a CNN the size of every layer's output for one image. They are kept as JSON in
`cache_dir`, keyed by the task, the folder, the trust setting and the image size, and invalidated when
any file at the folder's top level changes (name, size or modification time), so a second `train` of
the same model is checked in a fraction of a second.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from pathlib import Path
from typing import Any

from backend.config import RunConfig

log = logging.getLogger(__name__)

VERSION = 1  # bump when the fields change: older entries are then recounted


def summarize(cfg: RunConfig, model_dir: Path, cache_dir: Path | None = None) -> dict[str, Any] | None:
    """The counts for `cfg`'s task on the model in `model_dir`, from the cache when its files are unchanged."""
    size = (cfg.image_size or 224) if cfg.task == "image-classification" else 0
    key = f"{VERSION}|{cfg.task}|{Path(model_dir).resolve()}|{cfg.trust_remote_code}|{size}"
    stamp = _stamp(Path(model_dir))
    path = Path(cache_dir) / f"{hashlib.sha1(key.encode()).hexdigest()[:20]}.json" if cache_dir else None
    if path is not None:
        try:
            cached = json.loads(path.read_text(encoding="utf-8"))
            if cached.get("key") == key and cached.get("stamp") == stamp:
                return cached["summary"]
        except (OSError, ValueError, KeyError):
            pass
    summary = _count(cfg, Path(model_dir), size)
    if path is not None and summary is not None:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(f".{os.getpid()}.tmp")
            tmp.write_text(json.dumps({"key": key, "stamp": stamp, "summary": summary}), encoding="utf-8")
            tmp.replace(path)  # atomic: a concurrent reader sees the old entry or the new one
        except OSError as e:  # a read-only models folder costs speed, never the estimate
            log.info("could not keep the model summary in %s: %s", cache_dir, e)
    return summary


def _stamp(folder: Path) -> list[list[Any]]:
    try:
        stats = sorted((p.name, p.stat()) for p in folder.iterdir() if p.is_file())
    except OSError:
        return []
    return [[name, st.st_size, st.st_mtime_ns] for name, st in stats]


def _count(cfg: RunConfig, model_dir: Path, size: int) -> dict[str, Any] | None:
    import torch

    from backend.tasks import get_task

    skeleton = getattr(get_task(cfg.task), "skeleton", None)
    if skeleton is None:
        return None
    model, groups = skeleton(cfg, model_dir)
    linears = [m for name, m in model.named_modules() if isinstance(m, torch.nn.Linear) and "lm_head" not in name]
    head = getattr(model, "classifier", None) or getattr(model, "fc", None) or getattr(model, "head", None)
    if isinstance(head, str):  # an image classifier names its network's head module
        head = model.net.get_submodule(head)
    config = getattr(model, "config", None)
    shape = None
    if config is not None and hasattr(config, "num_hidden_layers"):
        hidden = getattr(config, "hidden_size", 0) or getattr(config, "d_model", 768)
        shape = {
            "hidden": hidden,
            "inner": getattr(config, "intermediate_size", 0) or 4 * hidden,
            "layers": config.num_hidden_layers,
            "heads": getattr(config, "num_attention_heads", 1),
            "vocab": getattr(config, "vocab_size", 0),
        }
    return {
        "total": sum(p.numel() for p in model.parameters()),
        "lora_io": sum(m.in_features + m.out_features for m in linears),
        "head": sum(p.numel() for p in head.parameters()) if head is not None else 0,
        "groups": [sum(p.numel() for p in g.parameters()) for g in groups],
        "shape": shape,
        "image_outputs": _image_outputs(model, getattr(model, "image_size", size)) if shape is None and size else 0,
    }


def _image_outputs(model: Any, size: int) -> int:
    """Elements of every leaf module's output for one image, on a meta-device forward (nothing computed)."""
    import torch

    outputs: list[int] = []
    hooks = [
        m.register_forward_hook(lambda _m, _i, out: outputs.append(out.numel()))
        for m in model.modules()
        if not list(m.children())
    ]
    try:
        with torch.no_grad():
            model(torch.empty(1, 3, size, size, device="meta"))
    except Exception:
        return 0
    finally:
        for h in hooks:
            h.remove()
    return sum(outputs)
