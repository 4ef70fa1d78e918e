"""Distillation as a task: a student learns from a completed run's model (the teacher).

The data's task (chat, text or image classification) builds the student as usual; this module wraps its
Trainer so the loss mixes the true labels with the teacher's softened scores (`distill_loss`,
backend/compress/loss.py): class scores for a classifier, the next-token distribution at every answer
token for a chat model (`token_distill_loss`; teacher and student must share a tokenizer, which is
checked before the run is queued and again here). Text classification is not augmented, so the
teacher scores every training row once before training (with its own tokenizer: the student may use
another) and the scores travel in the batches; images are randomly cropped and flipped, and chat logits
span the whole vocabulary, so there the teacher scores each batch as it comes.
The student is `cfg.model`, or with `layers_from_teacher` k the teacher itself keeping every k-th layer.
With `sequence_level` (chat) the teacher answers the training prompts once and the student learns those
answers as an ordinary SFT run: no shared tokenizer needed.

    python -m backend.cli train --task distill --teacher 3 --model all-MiniLM-L6-v2 --layers-from-teacher 2 \
        --dataset support_tickets --wait --json
"""

from __future__ import annotations

import copy
import logging
import shutil
import tempfile
from pathlib import Path
from typing import Any

import torch

from backend.compress.layers import every_kth, keep_layers, layer_list
from backend.compress.loss import distill_loss, token_distill_loss
from backend.config import RunConfig
from backend.tasks.base import Built

log = logging.getLogger(__name__)

TEACHER_BATCH = 32  # rows the teacher scores at once when caching its logits
CACHED = "teacher_logits"  # the training rows' column holding them


def build(
    cfg: RunConfig,
    model_dir: Path,
    train_rows: list[dict[str, Any]],
    eval_rows: list[dict[str, Any]],
    dtype: torch.dtype,
    teacher: tuple[Path, Path | None, bool],
) -> Built:
    """The data task's Built, with a Trainer that distils. `teacher`: the teacher run's (base, adapter, trusted)."""
    from backend.export.sources import load_source
    from backend.tasks import get_task
    from backend.tasks.classification import class_list

    source = load_source(cfg.task, *teacher)  # fp32, eval mode, any LoRA merged in
    labels = class_list(train_rows, eval_rows, cfg.task) if cfg.task != "sft" else None
    if cfg.task != "sft" and source.labels != labels:
        raise ValueError(
            f"teacher run {cfg.teacher} knows the classes {', '.join(source.labels)}, the data has "
            f"{', '.join(labels)}; distil on the dataset the teacher was trained on"
        )
    task = get_task(cfg.task)
    if cfg.task == "sft" and cfg.sequence_level:
        return _sequence_level(cfg, task, model_dir, train_rows, eval_rows, dtype, source)
    if cfg.layers_from_teacher:
        folder = _thinned_teacher(source, cfg.layers_from_teacher)
        try:
            built = task.build(cfg, folder, train_rows, eval_rows, dtype)
        finally:
            shutil.rmtree(folder, ignore_errors=True)
    else:
        built = task.build(cfg, model_dir, train_rows, eval_rows, dtype)
    if cfg.task == "text-classification":
        built.train = built.train.add_column(CACHED, _teacher_logits(source, train_rows, eval_rows, cfg))
    if cfg.task == "sft" and built.tokenizer.get_vocab() != source.tokenizer.get_vocab():
        raise ValueError(
            f"setting 'model': student {cfg.model} does not share teacher run {cfg.teacher}'s tokenizer; "
            "token-level distillation needs the same tokenizer"
        )
    built.trainer_cls = type(
        "DistillTrainer",
        (DistillMixin, built.trainer_cls),
        {
            "teacher": source.model,
            "temperature": cfg.temperature,
            "alpha": cfg.alpha,
            "loss": staticmethod(token_distill_loss if cfg.task == "sft" else distill_loss),
        },
    )
    student_layers = len(layer_list(built.model)) if cfg.task != "image-classification" else None
    teacher_params = sum(p.numel() for p in source.model.parameters())
    inner = built.final_metrics

    def final_metrics(trainer: Any) -> dict[str, Any]:
        extra = inner(trainer) if inner else {}
        return {**extra, "teacher_run": cfg.teacher, "teacher_params": teacher_params, "student_layers": student_layers}

    built.final_metrics = final_metrics
    log.info(
        "distilling run %s (%d params) into %s (%d params), T=%s alpha=%s",
        cfg.teacher, teacher_params, cfg.model, built.total_params, cfg.temperature, cfg.alpha,
    )  # fmt: skip
    return built


def _sequence_level(
    cfg: RunConfig, task: Any, model_dir: Path, train_rows: list, eval_rows: list, dtype: torch.dtype, source: Any
) -> Built:
    """Sequence-level distillation (Kim & Rush, 2016): the teacher answers every training prompt (greedy), and
    the student is an ordinary SFT run on those answers. Validation keeps the true answers, so its loss
    and scores say how close the student came to the data, as for any run."""
    from backend.tasks.causal_lm import generate_answers

    asked = [r for r in train_rows if any(m.get("role") == "assistant" for m in r.get("messages") or [])]
    _, answers, _ = generate_answers(source.model, source.tokenizer, asked, max_new_tokens=cfg.cutoff_len // 2)
    given = {id(row): answer for row, answer in zip(asked, answers, strict=True) if answer}  # batched, once
    taught = [_answered(row, given[id(row)]) if id(row) in given else row for row in train_rows]
    answered = len(given)
    if not answered:
        raise ValueError(f"teacher run {cfg.teacher} answered none of the training prompts; distil token by token")
    log.info("teacher run %s answered %d of %d training prompts", cfg.teacher, answered, len(train_rows))
    built = task.build(cfg, model_dir, taught, eval_rows, dtype)
    inner, teacher_params = built.final_metrics, sum(p.numel() for p in source.model.parameters())

    def final_metrics(trainer: Any) -> dict[str, Any]:
        extra = inner(trainer) if inner else {}
        return {**extra, "teacher_run": cfg.teacher, "teacher_params": teacher_params, "teacher_answers": answered}

    built.final_metrics = final_metrics
    return built


def _answered(row: dict[str, Any], answer: str) -> dict[str, Any]:
    """The row with its last assistant turn replaced by the teacher's `answer`."""
    turns = row["messages"]
    last = max(i for i, m in enumerate(turns) if m.get("role") == "assistant")
    return {**row, "messages": [*turns[:last], {**turns[last], "content": answer}, *turns[last + 1 :]]}


class DistillMixin:
    """Trainer.compute_loss with the teacher's scores (cached in the batch, or computed on the batch)."""

    teacher: Any
    temperature: float
    alpha: float
    loss: Any  # distill_loss (class scores) or token_distill_loss (a chat model's next tokens)

    def compute_loss(self, model: Any, inputs: dict[str, Any], return_outputs: bool = False, **kw: Any) -> Any:
        cached = inputs.pop(CACHED, None)
        if not model.training:  # evaluation: the plain loss on true labels, comparable with any run's
            return super().compute_loss(model, inputs, return_outputs=return_outputs, **kw)
        labels = inputs.pop("labels")
        outputs = model(**inputs)
        if cached is None:
            with torch.no_grad():
                self.teacher.to(outputs.logits.device)
                cached = self.teacher(**inputs).logits
        loss = self.loss(outputs.logits, cached.to(outputs.logits.device), labels, self.temperature, self.alpha)
        return (loss, outputs) if return_outputs else loss


def _thinned_teacher(source: Any, k: int) -> Path:
    """A folder holding the teacher with every k-th layer (and its tokenizer): the student's starting point."""
    if source.kind == "image-classifier":
        raise ValueError(
            "setting 'layers_from_teacher' thins transformer models; for images choose a smaller "
            "--model (resnet18, mobilenet_v3_small)"
        )
    student = copy.deepcopy(source.model)
    count = len(layer_list(student))
    keep_layers(student, every_kth(count, k))
    folder = Path(tempfile.mkdtemp(prefix="tuneboard-student-"))
    student.save_pretrained(folder, safe_serialization=True)
    source.tokenizer.save_pretrained(folder)
    log.info("student: the teacher's layers %s of %d", every_kth(count, k), count)
    return folder


def _teacher_logits(
    source: Any, train_rows: list[dict[str, Any]], eval_rows: list[dict[str, Any]], cfg: RunConfig
) -> list[list[float]]:
    """The teacher's logits for every training row, in the order the text task keeps them (same hold-out)."""
    from backend.export.sources import text_input
    from backend.tasks.classification import hold_out

    rows, _ = hold_out(train_rows, eval_rows, cfg.val_ratio, cfg.seed)
    out: list[list[float]] = []
    with torch.no_grad():
        for start in range(0, len(rows), TEACHER_BATCH):
            chunk = rows[start : start + TEACHER_BATCH]
            pairs = [r.get("text_pair") for r in chunk]
            inputs = text_input(
                source.tokenizer, [r["text"] for r in chunk], pairs, min(cfg.cutoff_len, source.max_length)
            )
            out += source.model(**inputs).logits.float().tolist()
    log.info("teacher scored %d training rows once (cached)", len(out))
    return out
