"""Pruning a transformer classifier in memory: what each kind removes, and how the model shrinks.

unstructured:0.5  the 50% smallest weights of the encoder's Linear layers set to zero
                  (torch.nn.utils.prune, global L1). The tensors keep their shape: the zeros save
                  size only when stored sparse and time only where a sparse kernel runs; neither
                  happens in a dense safetensors file on a CPU, and the figures say so.
heads:0.3         30% of each layer's attention heads removed (BERT-style encoders): the query, key and
                  value projections lose the heads' rows, the output projection their columns; the
                  heads whose value rows and output columns weigh least go (a head with zero value
                  rows writes nothing). config.json records the heads kept (backend/shrink.py).
neurons:0.3       30% of each layer's MLP neurons removed (the intermediate Linear layer loses
                  rows, the output one columns), the ones whose weights in and out weigh least;
                  every layer keeps as many, so the config's intermediate_size describes the model.
channels:0.3      30% of a CNN's channels removed (image classifiers: backend/compress/channels.py).
layers:2          2 whole layers removed, spread over the stack (the top layer, which feeds the
                  head, is kept); num_hidden_layers says how many are left.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from backend.compress.layers import keep_layers, layer_list
from backend.shrink import HEADS_KEY, attention_blocks, head_count, shrink_attention, sliced

KINDS = ("unstructured", "heads", "neurons", "layers", "channels")
IMAGE_KINDS = ("channels",)  # what an image classifier (a CNN) can lose; the rest are for transformers
_SPEC = re.compile(r"\s*([a-z]+)\s*:\s*([0-9]*\.?[0-9]+)\s*")


@dataclass(frozen=True)
class Prune:
    kind: str  # one of KINDS
    amount: float  # a share in (0, 1), or a number of layers

    def __str__(self) -> str:
        return f"{self.kind}:{self.amount:g}"


def parse(text: str) -> list[Prune]:
    """'neurons:0.3,layers:2' -> [Prune('neurons', 0.3), Prune('layers', 2)]; refuses what cannot be done."""
    out = []
    for part in (text or "").split(","):
        m = _SPEC.fullmatch(part)
        if not m or m.group(1) not in KINDS:
            raise ValueError(
                f"setting 'prune': {part.strip()!r} is not KIND:AMOUNT; use {', '.join(f'{k}:...' for k in KINDS)} "
                "(e.g. heads:0.3, neurons:0.3, layers:2 or, for a CNN, channels:0.3), several joined by commas"
            )
        kind, amount = m.group(1), float(m.group(2))
        if kind == "layers":
            if not amount.is_integer() or amount < 1:
                raise ValueError(f"setting 'prune': layers:{amount:g} must remove a whole number of layers (1 or more)")
        elif not 0 < amount < 1:
            raise ValueError(f"setting 'prune': {kind}:{amount:g} must be a share between 0 and 1 (exclusive)")
        out.append(Prune(kind, amount))
    if len({p.kind for p in out}) < len(out):
        raise ValueError("setting 'prune': each kind may appear once")
    return out


def apply(model: Any, steps: list[Prune]) -> dict[str, Any]:
    """Prune `model` in place, step by step; returns what each step removed."""
    report: dict[str, Any] = {}
    from backend.compress.channels import prune_channels

    order = ("layers", "heads", "neurons", "channels", "unstructured")  # fewer layers first; zeros last
    kinds = {
        "layers": drop_layers,
        "heads": prune_heads,
        "neurons": prune_neurons,
        "channels": prune_channels,
        "unstructured": unstructured,
    }
    for step in sorted(steps, key=lambda p: order.index(p.kind)):
        report[step.kind] = kinds[step.kind](model, step.amount)
    return report


def drop_layers(model: Any, count: float) -> dict[str, Any]:
    total = len(layer_list(model))
    n = int(count)
    if n >= total:
        raise ValueError(f"setting 'prune': layers:{n} would remove all {total} layers; remove at most {total - 1}")
    left = total - n
    keep = sorted({round(i * (total - 1) / (left - 1)) for i in range(left)}) if left > 1 else [total - 1]
    keep_layers(model, keep)
    return {"kept_layers": keep, "of": total}


def prune_neurons(model: Any, share: float) -> dict[str, Any]:
    size = model.config.intermediate_size
    keep_n = max(1, round(size * (1 - share)))
    for layer in layer_list(model):
        up, down = _mlp_pair(layer, size)
        score = up[1].weight.norm(dim=1) * down[1].weight.norm(dim=0)  # weight in x weight out, per neuron
        idx = score.topk(keep_n).indices.sort().values
        setattr(up[0], up[2], sliced(up[1], rows=idx))
        setattr(down[0], down[2], sliced(down[1], cols=idx))
    model.config.intermediate_size = keep_n
    return {"neurons_per_layer": keep_n, "of": size}


def prune_heads(model: Any, share: float) -> dict[str, Any]:
    import torch

    kept, heads = [], 0
    for attention, output in attention_blocks(model):
        size, heads = attention.attention_head_size, head_count(attention)
        keep_n = max(1, round(heads * (1 - share)))
        value = attention.value.weight.view(heads, size, -1)
        columns = output.dense.weight.view(output.dense.out_features, heads, size)
        score = value.norm(dim=(1, 2)) * columns.norm(dim=(0, 2))  # weight in x weight out, per head
        chosen = score.topk(keep_n).indices.sort().values
        shrink_attention(attention, output, keep_n, (chosen[:, None] * size + torch.arange(size)).flatten())
        kept.append(keep_n)
    setattr(model.config, HEADS_KEY, kept)
    return {"heads_per_layer": kept[0], "of": heads}


def unstructured(model: Any, share: float) -> dict[str, Any]:
    """Global L1 magnitude pruning of the encoder's Linear weights (torch.nn.utils.prune), made permanent."""
    import torch
    from torch.nn.utils import prune

    params = [(m, "weight") for m in layer_list(model).modules() if isinstance(m, torch.nn.Linear)]
    prune.global_unstructured(params, pruning_method=prune.L1Unstructured, amount=share)
    for module, name in params:
        prune.remove(module, name)
    total = sum(m.weight.numel() for m, _ in params)
    zeros = sum(int((m.weight == 0).sum()) for m, _ in params)
    return {"pruned_weights": zeros, "of": total, "sparsity": round(zeros / total, 4)}


def _mlp_pair(layer: Any, size: int) -> tuple[tuple[Any, Any, str], tuple[Any, Any, str]]:
    """(parent, Linear, attribute) of the MLP's up projection (to `size`) and its down projection (from it)."""
    import torch

    ups, downs = [], []
    for parent in layer.modules():
        for name, child in parent.named_children():
            if isinstance(child, torch.nn.Linear):
                if child.out_features == size and child.in_features != size:
                    ups.append((parent, child, name))
                elif child.in_features == size and child.out_features != size:
                    downs.append((parent, child, name))
    if len(ups) != 1 or len(downs) != 1:
        raise ValueError(
            f"setting 'prune': neurons needs one MLP (a Linear up to {size} and one down) per layer; "
            f"{type(layer).__name__} has {len(ups)} and {len(downs)} (gated MLPs are not supported)"
        )
    return ups[0], downs[0]
