"""Image classifiers from transformers (AutoModelForImageClassification) for the image-classification task.

A Hub id such as google/vit-base-patch16-224, microsoft/resnet-50 or facebook/convnext-tiny-224, or a
folder holding such a model, is fine-tuned like the torchvision networks (backend/tasks/
image_classification.py calls in here for every model whose config.json names a transformers image
model). The spec read from the folder has the same keys as a torchvision one; its arch is "hf:" + the
model type, and its image size, mean and std come from the model's preprocessor_config.json.

A run saves the network as transformers does (config.json with the classes as id2label, and
model.safetensors), with Tuneboard's image settings under config.json's "tuneboard" key, so the
result also loads with AutoModelForImageClassification.from_pretrained anywhere else.
"""

from __future__ import annotations

import inspect
import json
from pathlib import Path
from typing import Any

import torch
from torch import nn

PREFIX = "hf:"  # spec["arch"] of a transformers network: "hf:vit", "hf:resnet"
FORMAT = "transformers"  # spec["format"]
HEAD = "classifier"  # the head module of every transformers image classifier
DEFAULT_SIZE = 224


def is_image_model(config: dict[str, Any]) -> bool:
    """Whether a config.json describes a model AutoModelForImageClassification can build."""
    from transformers.models.auto.modeling_auto import MODEL_FOR_IMAGE_CLASSIFICATION_MAPPING_NAMES

    return config.get("model_type") in MODEL_FOR_IMAGE_CLASSIFICATION_MAPPING_NAMES


def read_spec(model_dir: Path, config: dict[str, Any], mean: tuple, std: tuple) -> dict[str, Any]:
    """The image spec of a transformers folder: a run's result carries its classes (id2label) and
    settings ("tuneboard"); a Hub model's own labels are not the data set's, so its classes are empty."""
    own = config.get("tuneboard") or {}
    processor = _processor(model_dir)
    labels = config.get("id2label") or {}
    return {
        "format": FORMAT,
        "arch": PREFIX + config["model_type"],
        "classes": [labels[str(i)] for i in range(len(labels))] if own else [],
        "image_size": own.get("image_size") or _processor_size(processor) or config.get("image_size") or DEFAULT_SIZE,
        "mean": own.get("mean") or processor.get("image_mean") or list(mean),
        "std": own.get("std") or processor.get("image_std") or list(std),
    }


def create_network(spec: dict[str, Any], model_dir: Path, num_classes: int) -> tuple[nn.Module, str]:
    """The network with a `num_classes` head (a new one when the count differs), and where its weights came from."""
    from transformers import AutoModelForImageClassification

    ours = bool(spec["classes"])
    ids = {i: str(i) for i in range(num_classes)}  # the class names go in as the run saves it (set_config)
    net = AutoModelForImageClassification.from_pretrained(
        model_dir,
        id2label=ids,
        label2id={v: k for k, v in ids.items()},
        ignore_mismatched_sizes=True,
        dtype=torch.float32,
    )
    return net, f"fine-tuned: {model_dir.name}" if ours else f"pretrained: {model_dir.name}"


def forward_extras(net: nn.Module, image_size: int) -> dict[str, Any]:
    """A vision transformer shown images of another size than it was trained at interpolates its
    position embeddings (where the model supports it)."""
    native = getattr(net.config, "image_size", None)
    other = isinstance(native, int) and native != image_size
    if other and "interpolate_pos_encoding" in inspect.signature(net.forward).parameters:
        return {"interpolate_pos_encoding": True}
    return {}


def skeleton(model_dir: Path) -> nn.Module:
    """The network without weights (meta device), two classes."""
    from transformers import AutoConfig, AutoModelForImageClassification

    config = AutoConfig.from_pretrained(model_dir)
    config.num_labels = 2
    with torch.device("meta"):
        return AutoModelForImageClassification.from_config(config)


def empty_network(folder: Path) -> nn.Module:
    """The saved network's architecture with random weights (its own classes): exports load into it."""
    from transformers import AutoConfig, AutoModelForImageClassification

    return AutoModelForImageClassification.from_config(AutoConfig.from_pretrained(folder))


def layer_groups(net: nn.Module) -> list[nn.Module]:
    """Bottom-to-top groups: the base model's first part (patch or stem embeddings), then each entry of
    its shallowest list of blocks (ViT's layers, ResNet's or ConvNeXt's stages, MobileNet's blocks)."""
    base = net.base_model
    stem = next(iter(base.children()))
    queue = list(base.children())
    while queue:
        module = queue.pop(0)
        if isinstance(module, nn.ModuleList) and len(module) > 1:
            return [stem, *module]
        queue += list(module.children())
    return [stem]


def save(net: nn.Module, info: dict[str, Any], out: Path) -> None:
    """save_pretrained with the classes and image settings in its config (set_config)."""
    set_config(net, info)
    net.save_pretrained(out)


def set_config(net: nn.Module, info: dict[str, Any]) -> None:
    """The classes as id2label, Tuneboard's image settings under "tuneboard"."""
    classes = list(info["classes"])
    net.config.id2label = dict(enumerate(classes))
    net.config.label2id = {name: i for i, name in enumerate(classes)}
    net.config.tuneboard = {k: info[k] for k in ("image_size", "mean", "std", "weights") if k in info}


def _processor(model_dir: Path) -> dict[str, Any]:
    try:
        return json.loads((model_dir / "preprocessor_config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def _processor_size(processor: dict[str, Any]) -> int | None:
    size = processor.get("size") or processor.get("crop_size")
    if isinstance(size, int):
        return size
    if isinstance(size, dict):
        return size.get("height") or size.get("shortest_edge")
    return None
