"""Channel pruning of a convolutional image classifier (torchvision ResNet, MobileNetV3), through
torch-pruning's dependency graph: removing a convolution's output channels also removes the matching
batch-norm channels and the next layers' input channels (residual additions and depthwise groups
included), so the network really shrinks and still runs.

channels:0.3   30% of the channels of every prunable layer removed, the ones whose weights have the
               smallest L2 norm; the classifier head keeps its outputs (the classes). Parameters fall
               faster than the share (a convolution loses input and output channels): about half at 0.3.
The pruned widths go into the model's config.json (`module_shapes`, backend/shrink.py), so every loader
builds the network with them before loading the weights.
"""

from __future__ import annotations

from typing import Any


def prune_channels(model: Any, share: float) -> dict[str, Any]:
    """Prune `model` (an ImageClassifier) in place; its config gains the widths (see `saved_spec`)."""
    import torch
    import torch_pruning as tp

    if not model.arch.startswith(("resnet", "mobilenet")):
        raise ValueError(
            f"setting 'prune': channels prunes convolutional networks (resnet, mobilenet); {model.arch} is a "
            "transformer: distil it into a smaller network instead (train --task distill --model resnet18)"
        )
    net = model.net
    head = net.get_submodule(model.head)
    last = [m for m in head.modules() if isinstance(m, torch.nn.Linear)][-1]  # the class outputs stay
    before = sum(p.numel() for p in net.parameters())
    was_training = net.training
    net.eval()
    example = torch.randn(1, 3, 64, 64)
    pruner = tp.pruner.MagnitudePruner(
        net, example, importance=tp.importance.MagnitudeImportance(p=2), pruning_ratio=share, ignored_layers=[last]
    )
    pruner.step()
    net.train(was_training)
    after = sum(p.numel() for p in net.parameters())
    return {"params_before": before, "params_after": after, "channel_share": share}
