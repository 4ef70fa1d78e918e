"""Compression of a trained model: knowledge distillation and pruning, each result an ordinary run.

- `distill_loss` (loss.py): alpha * hard-label CE + (1 - alpha) * T^2 * KL on softened class scores.
- distill.py: the `distill` task of the task registry (backend.tasks): a student classifier learns from
  a completed run; `distill_settings` (teacher.py) resolves `--task distill` and refuses a bad teacher.
- layers.py: a transformer's layer stack, thinned to every k-th layer (students, layer pruning).
- prune.py: `parse` ('neurons:0.3,layers:2') and `apply` (unstructured via torch.nn.utils.prune,
  MLP neurons and whole layers removed so the model really shrinks).
- variant.py: `compress_run` prunes a completed run into a new run (parent: the original) whose metrics
  set params, size, latency and accuracy beside the original's; `record_recovery` measures the
  optional recovery fine-tune (an ordinary short run) the same way.
"""

from backend.compress.loss import distill_loss
from backend.compress.teacher import distill_settings

__all__ = ["distill_loss", "distill_settings"]
