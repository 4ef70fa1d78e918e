"""Image classification with torchvision (ResNet-18/50, MobileNetV3 small/large, ViT-B/16) or any
transformers image classifier (a Hub id such as google/vit-base-patch16-224: backend/tasks/image_transformers.py).

Rows are {"image": encoded PNG/JPEG bytes, "label", "file"} (backend/tasks/image_data.py). The network
gets a new head for the data set's classes; training images get a random resized crop (and a mirror flip
unless image_flip is off), evaluation images a resize and centre crop; all are normalized RGB.
ImageNet weights come from the torch cache (TORCH_HOME, ~/.cache/torch) or a download; with
neither the network starts from random weights, and the log and the run's metrics say so.

The result is a folder with `model.safetensors` (the network's state dict) and `config.json`
(format, arch, classes, image size, normalization), which `load_model` reads back and which can be
fine-tuned again by naming the folder as the model.

    python -m backend.cli train --task image-classification --dataset digits --model resnet18 --wait --json
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

import torch
from torch import nn

from backend.config import ADAPTERS, RunConfig
from backend.tasks import image_transformers as hf
from backend.tasks.base import Built
from backend.tasks.classification import class_list, hold_out, trainer_metrics
from backend.tasks.image_data import MEAN, STD, ImageRows, auto_size, check_rows, transforms

log = logging.getLogger(__name__)

TASK = "image-classification"
FORMAT = "tuneboard-torchvision"  # config.json "format" of a torchvision model folder
ARCHS = ("resnet18", "resnet50", "mobilenet_v3_small", "mobilenet_v3_large", "vit_b_16")
HEADS = {"resnet": "fc", "mobilenet": "classifier", "vit": "heads"}  # the module a new head replaces
BN_MOMENTUM = 0.1  # batch-norm statistics' update rate while training (_short_run_batch_norm)


class ImageClassifier(nn.Module):
    """A torchvision or transformers network with the Trainer's calling convention: pixel_values
    (+ labels) in, loss and logits out. `extra`: keyword arguments a transformers network is called with."""

    def __init__(self, net: nn.Module, arch: str, extra: dict[str, Any] | None = None):
        super().__init__()
        self.net = net
        self.arch = arch
        self.head = _head_name(arch)
        self.extra = extra or {}

    def forward(self, pixel_values: torch.Tensor, labels: torch.Tensor | None = None) -> Any:
        from transformers.modeling_outputs import ImageClassifierOutput

        if self.arch.startswith(hf.PREFIX):
            logits = self.net(pixel_values=pixel_values, **self.extra).logits
            loss = nn.functional.cross_entropy(logits.float(), labels) if labels is not None else None
            return ImageClassifierOutput(loss=loss, logits=logits)
        if self.arch != "vit_b_16":  # oneDNN convolutions run 2-3x faster on NHWC inputs on a CPU
            pixel_values = pixel_values.contiguous(memory_format=torch.channels_last)
        logits = self.net(pixel_values)
        loss = nn.functional.cross_entropy(logits.float(), labels) if labels is not None else None
        return ImageClassifierOutput(loss=loss, logits=logits)


def build(
    cfg: RunConfig,
    model_dir: Path,
    train_rows: list[dict[str, Any]],
    eval_rows: list[dict[str, Any]],
    dtype: torch.dtype,
) -> Built:
    from transformers import Trainer, default_data_collator

    spec = read_spec(model_dir, cfg.model)
    check_rows(train_rows, "train")
    check_rows(eval_rows, "validation")
    transformers = spec["format"] == hf.FORMAT  # its own image size (the one it was trained at) by default
    size = cfg.image_size or (spec["image_size"] if transformers else auto_size(train_rows))
    _check_size(spec["arch"], size)
    labels = class_list(train_rows, eval_rows, TASK)
    train_rows, eval_rows = hold_out(train_rows, eval_rows, cfg.val_ratio, cfg.seed)
    label2id = {name: i for i, name in enumerate(labels)}
    mean, std = spec.get("mean", MEAN), spec.get("std", STD)
    train = ImageRows(train_rows, label2id, transforms(size, True, cfg.image_flip, mean, std))
    evalset = ImageRows(eval_rows, label2id, transforms(size, False, mean=mean, std=std)) if eval_rows else None

    net, weights = create_network(spec, model_dir, len(labels), size)
    _short_run_batch_norm(net)
    model = ImageClassifier(net, spec["arch"], hf.forward_extras(net, size) if transformers else None)
    groups = layer_groups(model)
    if cfg.method == "qlora":
        raise ValueError("setting 'method': qlora is for chat and text models here; use lora or full for images")
    if cfg.method in ADAPTERS:
        model = _add_lora(model, cfg)
    info = {"format": spec["format"], "arch": spec["arch"], "classes": labels, "image_size": size}
    info |= {"mean": list(mean), "std": list(std), "weights": weights}
    if spec.get("module_shapes"):  # a pruned network keeps its widths (measured again as it is saved)
        info["module_shapes"] = spec["module_shapes"]
    return Built(
        model,
        None,
        train,
        evalset,
        default_data_collator,
        len(train),  # examples, not tokens
        Trainer,
        compute_metrics=trainer_metrics(labels),
        layer_groups=groups,
        save=lambda trainer, out: save_model(trainer.model, info, out),
        final_metrics=lambda trainer: {"weights": weights, "image_size": size},
    )


def read_spec(model_dir: Path, name: str) -> dict[str, Any]:
    """The folder's image spec: a torchvision architecture (catalog), a transformers image classifier
    (Hub or folder), or a model saved by a run (either kind)."""
    try:
        spec = json.loads((model_dir / "config.json").read_text())
    except (OSError, ValueError):
        spec = {}
    if spec.get("format") != FORMAT and hf.is_image_model(spec):
        return hf.read_spec(model_dir, spec, MEAN, STD)
    if spec.get("format") != FORMAT:
        raise ValueError(
            f"model '{name}' is not a torchvision image model; for image-classification choose one of "
            f"{', '.join(ARCHS)}, a transformers image classifier (a Hub id such as google/vit-base-patch16-224 "
            "or microsoft/resnet-50) or a folder saved by an image-classification run"
        )
    if spec.get("arch") not in ARCHS:
        raise ValueError(f"model '{name}': architecture {spec.get('arch')!r} is not one of {', '.join(ARCHS)}")
    return spec


def create_network(spec: dict[str, Any], model_dir: Path, num_classes: int, image_size: int) -> tuple[nn.Module, str]:
    """The network with a new `num_classes` head, and where its weights came from (in words)."""
    import torchvision

    arch = spec["arch"]
    if spec["format"] == hf.FORMAT:
        return hf.create_network(spec, model_dir, num_classes)
    extra = {"image_size": image_size} if arch.startswith("vit") else {}
    saved = model_dir / "model.safetensors"
    if saved.is_file():  # a run's result: its own classes first, then a new head if they differ
        from safetensors.torch import load_file

        net = _torchvision_network(spec, image_size)
        _load(net, load_file(saved), arch, image_size)
        weights = f"fine-tuned: {model_dir.name}"
        if spec["classes"] and len(spec["classes"]) == num_classes:
            return net, weights
    else:
        net = torchvision.models.get_model(arch, weights=None, **extra)
        state, weights = imagenet_state(arch)
        if state is not None:
            _load(net, state, arch, image_size)
    _new_head(net, arch, num_classes)
    return net, weights


def imagenet_state(arch: str) -> tuple[dict[str, torch.Tensor] | None, str]:
    """ImageNet weights from the torch cache, else downloaded (when online); (None, why) otherwise."""
    import socket
    from urllib.parse import urlparse

    import torchvision

    url = torchvision.models.get_model_weights(arch).DEFAULT.url
    cached = Path(torch.hub.get_dir()) / "checkpoints" / Path(urlparse(url).path).name
    if cached.is_file():
        return torch.load(cached, map_location="cpu", weights_only=True), "imagenet"
    if os.environ.get("HF_HUB_OFFLINE") == "1" or os.environ.get("TUNEBOARD_OFFLINE") == "1":
        reason = "offline mode"
    else:
        old = socket.getdefaulttimeout()
        socket.setdefaulttimeout(15)  # a blocked network fails in seconds, not minutes
        try:
            state = torch.hub.load_state_dict_from_url(url, map_location="cpu", progress=False, weights_only=True)
            return state, "imagenet"
        except Exception as e:  # no network, DNS, proxy, disk: all mean the same to the user
            reason = f"{type(e).__name__}: {e}"[:200]
        finally:
            socket.setdefaulttimeout(old)
    log.warning(
        "no ImageNet weights for %s (not in %s and not downloadable: %s); training starts from random weights",
        arch,
        cached.parent,
        reason,
    )
    return None, "random: no ImageNet weights offline"


def layer_groups(model: ImageClassifier) -> list[nn.Module]:
    """Bottom-to-top groups: the stem, then each stage (ResNet) or block (MobileNet, ViT); the head is not listed."""
    net, arch = model.net, model.arch
    if arch.startswith(hf.PREFIX):
        return hf.layer_groups(net)
    if arch.startswith("resnet"):
        return [nn.ModuleList([net.conv1, net.bn1]), net.layer1, net.layer2, net.layer3, net.layer4]
    if arch.startswith("mobilenet"):
        return list(net.features)  # features[0] is the stem conv, the rest inverted-residual blocks
    # ViT: patch projection, class token and position embeddings first, then each encoder block.
    stem = nn.ModuleList([net.conv_proj, _Params([net.class_token, net.encoder.pos_embedding])])
    return [stem, *net.encoder.layers]


def skeleton(cfg: RunConfig, model_dir: Path) -> tuple[nn.Module, list[nn.Module]]:
    """The network without weights (meta device), for checks before a run is queued."""
    import torchvision

    spec = read_spec(model_dir, cfg.model)
    size = cfg.image_size or spec.get("image_size") or 224
    _check_size(spec["arch"], size)
    if spec["format"] == hf.FORMAT:
        model = ImageClassifier(hf.skeleton(model_dir), spec["arch"])
    else:
        extra = {"image_size": size} if spec["arch"].startswith("vit") else {}
        with torch.device("meta"):
            model = ImageClassifier(torchvision.models.get_model(spec["arch"], weights=None, **extra), spec["arch"])
    model.image_size = size  # what a run trains at: the memory check's forward uses it (a ViT fixes its size)
    return model, layer_groups(model)


def save_model(model: nn.Module, info: dict[str, Any], out: Path) -> None:
    """model.safetensors (the torchvision network's weights, LoRA merged in) + config.json."""
    from safetensors.torch import save_file

    if hasattr(model, "merge_and_unload"):  # a LoRA-wrapped network: fold the adapter into the weights
        model = model.merge_and_unload()
    net = model.net if isinstance(model, ImageClassifier) else model
    out.mkdir(parents=True, exist_ok=True)
    if info["format"] == hf.FORMAT:
        hf.save(net, info, out)
        return
    save_file({k: v.detach().contiguous().cpu() for k, v in net.state_dict().items()}, out / "model.safetensors")
    if "module_shapes" in info:  # channels pruned: torchvision's constructor would build the full widths
        from backend.shrink import module_shapes

        info = {**info, "module_shapes": module_shapes(net)}
    (out / "config.json").write_text(json.dumps(info, indent=2, ensure_ascii=False))


def load_model(folder: Path) -> tuple[ImageClassifier, dict[str, Any]]:
    """A saved image classifier (eval mode) and its config: arch, classes, image_size, mean, std."""
    spec = read_spec(folder, str(folder))
    net, _ = create_network(spec, folder, len(spec["classes"]), spec["image_size"])
    return _wrap(net, spec).eval(), spec


def empty_model(folder: Path) -> ImageClassifier:
    """The saved classifier's network with random weights (fp32): exports load their own weights into it."""
    spec = read_spec(folder, str(folder))
    if spec["format"] == hf.FORMAT:
        return _wrap(hf.empty_network(folder), spec)
    return ImageClassifier(_torchvision_network(spec, spec["image_size"]), spec["arch"])


def _torchvision_network(spec: dict[str, Any], image_size: int) -> nn.Module:
    """A saved torchvision network's architecture (its classes, pruned widths) with random weights."""
    import torchvision

    extra = {"image_size": image_size} if spec["arch"].startswith("vit") else {}
    net = torchvision.models.get_model(spec["arch"], weights=None, num_classes=len(spec["classes"]), **extra)
    if spec.get("module_shapes"):  # channels pruned (compress): the widths it was saved with
        from backend.shrink import reshape_modules

        reshape_modules(net, spec["module_shapes"])
    return net


def save_config(model: ImageClassifier, spec: dict[str, Any], out: Path) -> None:
    """config.json alone, for exports that store the weights their own way (int8, ONNX)."""
    if spec["format"] == hf.FORMAT:
        hf.set_config(model.net, spec)
        model.net.config.save_pretrained(out)
        return
    (out / "config.json").write_text(json.dumps(spec, indent=2, ensure_ascii=False))


def _wrap(net: nn.Module, spec: dict[str, Any]) -> ImageClassifier:
    extra = hf.forward_extras(net, spec["image_size"]) if spec["format"] == hf.FORMAT else None
    return ImageClassifier(net, spec["arch"], extra)


class _Params(nn.Module):
    """Loose parameters (ViT's class token and position embeddings) as a module, so a group has .parameters()."""

    def __init__(self, params: list[nn.Parameter]):
        super().__init__()
        self.params = nn.ParameterList(params)


def _short_run_batch_norm(net: nn.Module) -> None:
    """Batch-norm running statistics that follow a fine-tuning run: MobileNetV3 ships momentum 0.01 (made for
    hundreds of ImageNet epochs), so after a few epochs its statistics still lag the early steps and every
    digit was predicted as one class (10% accuracy, training loss 0.77). PyTorch's default, 0.1, follows
    the last ~20 steps."""
    for module in net.modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm) and (module.momentum or 0) < BN_MOMENTUM:
            module.momentum = BN_MOMENTUM


def _head_name(arch: str) -> str:
    if arch.startswith(hf.PREFIX):
        return hf.HEAD
    return next(name for prefix, name in HEADS.items() if arch.startswith(prefix))


def _new_head(net: nn.Module, arch: str, num_classes: int) -> None:
    if arch.startswith("resnet"):
        net.fc = nn.Linear(net.fc.in_features, num_classes)
    elif arch.startswith("mobilenet"):
        net.classifier[-1] = nn.Linear(net.classifier[-1].in_features, num_classes)
    else:
        net.heads.head = nn.Linear(net.heads.head.in_features, num_classes)


def _load(net: nn.Module, state: dict[str, torch.Tensor], arch: str, image_size: int) -> None:
    """Load weights; ViT position embeddings are interpolated when the image size differs."""
    if arch.startswith("vit"):
        from torchvision.models.vision_transformer import interpolate_embeddings

        if state["encoder.pos_embedding"].shape != net.encoder.pos_embedding.shape:
            state = interpolate_embeddings(image_size, 16, dict(state))
    head = _head_name(arch) + "."
    own = net.state_dict()
    # A head of another size (another class count) is replaced afterwards anyway.
    state = {k: v for k, v in state.items() if not (k.startswith(head) and own[k].shape != v.shape)}
    missing, unexpected = net.load_state_dict(state, strict=False)
    if unexpected or [k for k in missing if not k.startswith(head)]:
        raise ValueError(f"weights do not fit {arch}: missing {missing[:3]}, unexpected {unexpected[:3]}")


def _add_lora(model: ImageClassifier, cfg: RunConfig) -> Any:
    """LoRA on every conv and linear layer outside the head (or the named ones); the head trains in full.
    Grouped (depthwise) convolutions are left out: a few weights each, and peft adapts them only when
    the rank divides the groups, which MobileNet's 16-960 groups never all allow."""
    from peft import LoraConfig, get_peft_model

    if cfg.lora_targets.strip() == "all-linear":
        # Attention blocks are adapted whole: nn.MultiheadAttention reads its out_proj weight directly.
        inside_attention = {f"{n}.out_proj" for n, m in model.named_modules() if isinstance(m, nn.MultiheadAttention)}
        targets: Any = [
            n
            for n, m in model.named_modules()
            if isinstance(m, nn.Conv2d | nn.Linear | nn.MultiheadAttention)
            and getattr(m, "groups", 1) == 1
            and f".{model.head}" not in n
            and n not in inside_attention
        ]
    else:
        from backend.training.methods import lora_targets

        targets = lora_targets(model, cfg)
    config = LoraConfig(
        r=cfg.lora_rank,
        lora_alpha=cfg.lora_alpha,
        lora_dropout=cfg.lora_dropout,
        target_modules=targets,
        use_dora=cfg.lora_dora,
        use_rslora=cfg.lora_rslora,
        modules_to_save=[f"net.{model.head}"],
    )
    return get_peft_model(model, config)


def _check_size(arch: str, size: int) -> None:
    if arch.startswith("vit") and size % 16:
        raise ValueError(f"setting 'image_size': {arch} cuts images into 16-pixel patches; use a multiple of 16")
