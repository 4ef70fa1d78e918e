"""Shrinking a transformer in place, and loading a shrunk one back in its shape.

- `sliced`: a Linear layer cut to the output rows or input columns that stay (pruned neurons, heads).
- Channels of a CNN (torchvision): `module_shapes` records the widths a pruned network has, and
  `reshape_modules` gives a freshly built network those widths before its weights load (the image
  classifier's config.json keeps them as `module_shapes`).
- Attention heads of a BERT-style encoder: `shrink_attention` keeps some heads of a layer. transformers'
  configs tie the head count to the hidden size (head size = hidden / heads), so no stock field describes
  fewer heads of the same size: config.json records the heads each layer kept under
  `tuneboard_attention_heads`, and `from_pretrained` loads such a folder (a stock load would re-initialize
  the smaller projections). Every loader of a text classifier goes through it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

HEADS_KEY = "tuneboard_attention_heads"  # config.json: the heads each layer kept
_PROJECTIONS = ("query", "key", "value")


def sliced(linear: Any, rows: Any = None, cols: Any = None) -> Any:
    """A new Linear holding the kept output rows (and their biases) or the kept input columns."""
    import torch

    weight = linear.weight.data
    weight = weight[rows] if rows is not None else weight[:, cols]
    out = torch.nn.Linear(weight.shape[1], weight.shape[0], bias=linear.bias is not None)
    out.weight.data.copy_(weight)
    if linear.bias is not None:
        out.bias.data.copy_(linear.bias.data[rows] if rows is not None else linear.bias.data)
    return out.to(linear.weight.dtype)


def attention_blocks(model: Any) -> list[tuple[Any, Any]]:
    """Per layer, in order: (self-attention with query/key/value, the module holding its output `dense`)."""
    blocks = []
    for module in model.base_model.modules():
        attention = getattr(getattr(module, "attention", None), "self", None)
        output = getattr(getattr(module, "attention", None), "output", None)
        if attention is not None and hasattr(output, "dense") and all(hasattr(attention, p) for p in _PROJECTIONS):
            blocks.append((attention, output))
    if not blocks:
        raise ValueError(
            "setting 'prune': heads needs BERT-style attention (query, key, value and an output projection); "
            f"{type(model).__name__} has another layout: prune neurons or layers instead"
        )
    return blocks


def head_count(attention: Any) -> int:
    return attention.query.out_features // attention.attention_head_size


def shrink_attention(attention: Any, output: Any, keep_n: int, rows: Any) -> None:
    """Keep the projections' `rows` (the kept heads' dimensions) and the output projection's columns."""
    for name in _PROJECTIONS:
        setattr(attention, name, sliced(getattr(attention, name), rows=rows))
    output.dense = sliced(output.dense, cols=rows)
    attention.num_attention_heads = keep_n
    attention.all_head_size = keep_n * attention.attention_head_size


def from_pretrained(cls: Any, folder: Path | str, **kwargs: Any) -> Any:
    """`cls.from_pretrained(folder, **kwargs)`, also for a folder whose heads were pruned."""
    if not heads_kept(folder):
        return cls.from_pretrained(folder, **kwargs)
    from transformers.utils import logging as hf_logging

    level = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()  # its report of the smaller projections it re-initializes: restored below
    try:
        model = cls.from_pretrained(folder, **{**kwargs, "ignore_mismatched_sizes": True})
    finally:
        hf_logging.set_verbosity(level)
    return restore(model, Path(folder))


def heads_kept(folder: Path | str) -> list[int] | None:
    config = Path(folder) / "config.json"
    return json.loads(config.read_text()).get(HEADS_KEY) if config.is_file() else None


def reshape(model: Any) -> Any:
    """A model built from a config with `tuneboard_attention_heads` (from_config, or a stock load that
    re-initialized the projections) cut to the saved head counts; its weights are loaded after."""
    import torch

    kept = getattr(model.config, HEADS_KEY, None)
    if not kept:
        return model
    blocks = attention_blocks(model)
    if len(kept) != len(blocks):
        raise ValueError(f"config.json's {HEADS_KEY} names {len(kept)} layers; the model has {len(blocks)}")
    for (attention, output), keep_n in zip(blocks, kept, strict=True):
        if head_count(attention) != keep_n:
            shrink_attention(attention, output, keep_n, torch.arange(keep_n * attention.attention_head_size))
    return model


def restore(model: Any, folder: Path) -> Any:
    """Shrink a freshly loaded model's attention to its config's head counts and load the saved projections."""
    import torch
    from safetensors import safe_open

    reshape(model)
    blocks = attention_blocks(model)
    shrunk = {id(m) for a, o in blocks for m in (a.query, a.key, a.value, o.dense)}
    wanted = {
        f"{name}.{p}": param
        for name, module in model.named_modules()
        if id(module) in shrunk
        for p, param in module.named_parameters(recurse=False)
    }
    found = set()
    for file in sorted(folder.glob("*.safetensors")):
        with safe_open(str(file), framework="pt") as f:
            for key in f.keys():  # noqa: SIM118 (a safe_open handle is not a dict)
                if key in wanted:
                    with torch.no_grad():
                        wanted[key].copy_(f.get_tensor(key))
                    found.add(key)
    if missing := sorted(set(wanted) - found):
        raise ValueError(f"{folder}: the pruned model's weights lack {missing[0]} (and {len(missing) - 1} more)")
    return model


def module_shapes(net: Any) -> dict[str, list[Any]]:
    """The channel counts of a network's convolutions, batch norms and linear layers, by module name: what
    config.json keeps for a CNN whose channels were pruned (torchvision's constructors build the full widths)."""
    import torch

    shapes: dict[str, list[Any]] = {}
    for name, m in net.named_modules():
        if isinstance(m, torch.nn.Conv2d):
            shapes[name] = ["conv", m.in_channels, m.out_channels, m.groups]
        elif isinstance(m, torch.nn.BatchNorm2d):
            shapes[name] = ["batchnorm", m.num_features]
        elif isinstance(m, torch.nn.Linear):
            shapes[name] = ["linear", m.in_features, m.out_features]
    return shapes


def reshape_modules(net: Any, shapes: dict[str, list[Any]]) -> Any:
    """A freshly built network (weights to be loaded after) with the recorded channel counts."""
    import torch

    for name, shape in shapes.items():
        parent_name, _, child = name.rpartition(".")
        parent = net.get_submodule(parent_name) if parent_name else net
        old = getattr(parent, child)
        if shape[0] == "conv":
            new = torch.nn.Conv2d(
                shape[1], shape[2], old.kernel_size, old.stride, old.padding, old.dilation, shape[3],
                old.bias is not None, old.padding_mode,
            )  # fmt: skip
        elif shape[0] == "batchnorm":
            new = torch.nn.BatchNorm2d(shape[1], old.eps, old.momentum, old.affine, old.track_running_stats)
        else:
            new = torch.nn.Linear(shape[1], shape[2], bias=old.bias is not None)
        setattr(parent, child, new)
    return net
