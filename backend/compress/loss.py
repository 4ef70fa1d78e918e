"""The distillation loss: hard labels and the teacher's softened class scores, in one small function."""

from __future__ import annotations

from typing import Any


def distill_loss(student: Any, teacher: Any, labels: Any, temperature: float, alpha: float) -> Any:
    """alpha * CE(student, labels) + (1 - alpha) * T^2 * KL(student/T || teacher/T), averaged over the batch.

    KL(student/T || teacher/T) is written as in the issue and in Hinton et al. (2015): the student's
    softened distribution is fitted to the teacher's, i.e. torch's kl_div(log_softmax(student / T),
    softmax(teacher / T)) = sum_c p_teacher,c * (log p_teacher,c - log p_student,c) per row. T^2 keeps the
    soft term's gradient at the scale of the hard one when T changes.
    """
    import torch.nn.functional as F

    student, teacher = student.float(), teacher.float().detach()
    hard = F.cross_entropy(student, labels)
    soft = F.kl_div(
        F.log_softmax(student / temperature, dim=-1), F.softmax(teacher / temperature, dim=-1), reduction="batchmean"
    )
    return alpha * hard + (1 - alpha) * temperature**2 * soft


def token_distill_loss(student: Any, teacher: Any, labels: Any, temperature: float, alpha: float) -> Any:
    """`distill_loss` per answer token of a causal LM: the logits at position i predict token i + 1, and
    only tokens with a label (the answers, not the prompts or padding: -100) count, each as one row."""
    keep = labels[:, 1:] != -100
    vocab = min(student.size(-1), teacher.size(-1))  # embeddings padded to different multiples
    return distill_loss(
        student[:, :-1][keep][:, :vocab], teacher[:, :-1][keep][:, :vocab], labels[:, 1:][keep], temperature, alpha
    )
