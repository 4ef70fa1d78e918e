"""A transformer's stack of layers: found, thinned to every k-th layer, or cut to a list."""

from __future__ import annotations

from typing import Any


def layer_list(model: Any) -> Any:
    """The encoder's layers: the longest nn.ModuleList under the base model (as layer_groups finds it)."""
    import torch

    lists = [m for m in model.base_model.modules() if isinstance(m, torch.nn.ModuleList)]
    if not lists:
        raise ValueError(f"{type(model).__name__} has no list of layers to thin; choose a transformer classifier")
    return max(lists, key=len)


def keep_layers(model: Any, keep: list[int]) -> Any:
    """Keep only the layers at positions `keep` (in order), in place; the config says how many are left."""
    import torch

    layers = layer_list(model)
    kept = torch.nn.ModuleList([layers[i] for i in keep])
    for module in model.base_model.modules():
        for child, value in module.named_children():
            if value is layers:
                setattr(module, child, kept)
                break
    for i, layer in enumerate(kept):  # attention caches and eager layer ids count from 0 again
        attention = getattr(layer, "attention", None) or getattr(layer, "self_attn", None)
        if attention is not None and hasattr(attention, "layer_idx"):
            attention.layer_idx = i
    model.config.num_hidden_layers = len(kept)
    kinds = getattr(model.config, "layer_types", None)  # per-layer attention kinds (sliding/full) follow
    if isinstance(kinds, list) and len(kinds) == len(layers):
        model.config.layer_types = [kinds[i] for i in keep]
    return model


def every_kth(count: int, k: int) -> list[int]:
    """Layers k-1, 2k-1, ...: the top layer (which feeds the head) is always kept."""
    if k < 1 or k > count:
        raise ValueError(f"setting 'layers_from_teacher': {k} must be between 1 and the teacher's {count} layers")
    return list(range(count - 1, -1, -k))[::-1]
