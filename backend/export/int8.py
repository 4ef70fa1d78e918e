"""int8 export: torch.ao dynamic quantization of every nn.Linear (qint8 weights, fp32 activations), for CPUs.

The quantized weights are stored as plain tensors in safetensors (int8 values, per-tensor scale and
zero point), never as a pickle, with `quantization.json` naming the quantized modules. Loading
builds the network from its config, quantizes it the same way and puts the stored weights back:

    from backend.export.int8 import load_int8
    model = load_int8(Path("workspace/exports/3/int8"))   # an eval-mode torch module, CPU only
"""

from __future__ import annotations

import json
import logging
import warnings
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

WEIGHTS = "model.int8.safetensors"
MANIFEST = "quantization.json"


def quantize(model: Any) -> Any:
    """A copy of `model` whose nn.Linear layers run int8 matmuls (torch.ao dynamic quantization)."""
    import copy

    import torch

    with warnings.catch_warnings():  # torch.ao's eager quantization warns that it moves to torchao
        warnings.simplefilter("ignore")
        return torch.ao.quantization.quantize_dynamic(copy.deepcopy(model).eval(), {torch.nn.Linear}, dtype=torch.qint8)


def save_int8(quantized: Any, target: Path, kind: str) -> None:
    """WEIGHTS + MANIFEST in `target`. `kind` says how to rebuild the network (see `load_int8`)."""
    import torch
    from safetensors.torch import save_file
    from torch.ao.nn.quantized.dynamic import Linear as QLinear

    tensors: dict[str, torch.Tensor] = {}
    modules = []
    for name, module in quantized.named_modules():
        if isinstance(module, QLinear):
            weight, bias = module._weight_bias()
            if weight.qscheme() != torch.per_tensor_affine:
                raise ValueError(f"int8 export: {name} is quantized per {weight.qscheme()}; expected per tensor")
            tensors[f"{name}.weight_int8"] = weight.int_repr().contiguous()
            tensors[f"{name}.weight_scale"] = torch.tensor([weight.q_scale()], dtype=torch.float64)
            tensors[f"{name}.weight_zero_point"] = torch.tensor([weight.q_zero_point()], dtype=torch.int64)
            if bias is not None:
                tensors[f"{name}.bias"] = bias.detach().contiguous()
            modules.append(name)
    quantized_prefixes = tuple(f"{m}." for m in modules)
    for key, value in quantized.state_dict().items():
        if isinstance(value, torch.Tensor) and not key.startswith(quantized_prefixes):
            tensors.setdefault(key, value.detach().contiguous())
    # Tied weights (an embedding shared with the head) are one tensor: safetensors stores each storage once.
    seen: dict[int, str] = {}
    for key in list(tensors):
        ptr = tensors[key].untyped_storage().data_ptr()
        if ptr in seen and tensors[key].numel():
            tensors[key] = tensors[key].clone()
        seen[ptr] = key
    save_file(tensors, target / WEIGHTS)
    manifest = {"method": "torch.ao dynamic quantization", "dtype": "qint8", "kind": kind, "modules": modules}
    (target / MANIFEST).write_text(json.dumps(manifest, indent=2, ensure_ascii=False))


def load_int8(folder: Path) -> Any:
    """The int8 network saved in `folder` (eval mode), rebuilt from its config and quantized the same way."""
    import torch
    from safetensors.torch import load_file
    from torch.ao.nn.quantized.dynamic import Linear as QLinear

    manifest = json.loads((folder / MANIFEST).read_text())
    model = quantize(_skeleton(folder, manifest["kind"]))
    tensors = load_file(folder / WEIGHTS)
    done = set()
    for name in manifest["modules"]:
        module = model.get_submodule(name)
        if not isinstance(module, QLinear):
            raise ValueError(f"{folder / WEIGHTS}: {name} is not a quantized Linear in the rebuilt network")
        scale = float(tensors[f"{name}.weight_scale"][0])
        zero = int(tensors[f"{name}.weight_zero_point"][0])
        weight = torch._make_per_tensor_quantized_tensor(tensors[f"{name}.weight_int8"], scale, zero)
        module.set_weight_bias(weight, tensors.get(f"{name}.bias"))
        done.update(f"{name}.{s}" for s in ("weight_int8", "weight_scale", "weight_zero_point", "bias"))
    rest = {k: v for k, v in tensors.items() if k not in done}
    # Everything else (embeddings, norms, convolutions) goes back in place; quantized layers skip load_state_dict.
    prefixes = tuple(f"{m}." for m in manifest["modules"])
    wanted = {k for k, v in model.state_dict().items() if isinstance(v, torch.Tensor) and not k.startswith(prefixes)}
    missing = sorted(wanted - set(rest))
    if missing or set(rest) - wanted:
        unexpected = sorted(set(rest) - wanted)
        raise ValueError(
            f"{folder / WEIGHTS} does not fit the network: missing {missing[:3]}, unexpected {unexpected[:3]}"
        )
    with torch.no_grad():
        for key, value in rest.items():
            owner, _, attr = key.rpartition(".")
            getattr(model.get_submodule(owner), attr).copy_(value)
    return model.eval()


def _skeleton(folder: Path, kind: str) -> Any:
    """The fp32 network (random weights) that the export's config describes (pruned widths and heads too)."""
    from backend.shrink import reshape

    if kind == "image-classifier":
        from backend.tasks import image_classification as ic

        return ic.empty_model(folder)  # channels pruned (compress): its saved widths
    from transformers import AutoConfig, AutoModelForCausalLM, AutoModelForSequenceClassification

    config = AutoConfig.from_pretrained(folder)  # no remote code: exports are of natively supported models
    auto = AutoModelForCausalLM if kind == "causal-lm" else AutoModelForSequenceClassification
    return reshape(auto.from_config(config))  # a classifier whose heads were pruned: cut to the saved heads
