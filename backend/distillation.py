"""Settings of distillation (a student learning from a completed run, the teacher), as RunConfig fields.

backend/config.py declares them with these Field objects (one line each); what they do lives in
backend/compress/distill.py and backend/compress/teacher.py.

    teacher: int = distillation.TEACHER
"""

from __future__ import annotations

from dataclasses import field

WHERE = {"task": ("text-classification", "image-classification", "sft", "distill")}  # the tasks that distil


def _setting(default: object, help: str, where: dict[str, tuple[str, ...]] = WHERE) -> object:
    return field(default=default, metadata={"help": help, "when": where})


TEACHER = _setting(0, "Distillation: a completed run whose model teaches this one (0: none); the student is `model`.")
TEMPERATURE = _setting(2.0, "Distillation: softens both models' scores (classes or next tokens); higher passes more.")
ALPHA = _setting(0.5, "Distillation: weight of the true labels' loss; 1 - alpha goes to the teacher's.")
LAYERS_FROM_TEACHER = _setting(0, "Distillation: the student is the teacher keeping every k-th layer (0: `model`).")
SEQUENCE_LEVEL = _setting(
    False,
    "Distillation (chat): learn the teacher's own greedy answers (any tokenizer), not its next-token scores.",
    {"task": ("sft", "distill")},
)
