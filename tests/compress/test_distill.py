"""Distillation: the loss is the formula, a tiny teacher teaches a thinner copy of itself through the CLI,
and bad settings are refused before anything is queued."""

from __future__ import annotations

import math

import pytest

from tests.conftest import add_digits, cli, cli_json


def test_loss_equals_the_formula_on_a_hand_computed_batch():
    import torch

    from backend.compress import distill_loss

    student = torch.tensor([[2.0, 0.0, -1.0], [0.5, 1.5, 0.0]])
    teacher = torch.tensor([[1.0, 1.0, -2.0], [0.0, 3.0, 1.0]])
    labels = torch.tensor([0, 2])
    t, alpha = 2.0, 0.3

    def softmax(row, temp=1.0):
        e = [math.exp(x / temp) for x in row]
        return [x / sum(e) for x in e]

    hard = sum(-math.log(softmax(s)[y]) for s, y in zip(student.tolist(), labels.tolist(), strict=True)) / 2
    kl = 0.0  # per row: sum over classes of p_teacher * (log p_teacher - log p_student), softened by T
    for s, tt in zip(student.tolist(), teacher.tolist(), strict=True):
        ps, pt = softmax(s, t), softmax(tt, t)
        kl += sum(q * (math.log(q) - math.log(p)) for p, q in zip(ps, pt, strict=True))
    expected = alpha * hard + (1 - alpha) * t**2 * kl / 2
    assert float(distill_loss(student, teacher, labels, t, alpha)) == pytest.approx(expected, rel=1e-6)
    # alpha 1: the true labels alone; a student equal to its teacher adds nothing soft
    assert float(distill_loss(student, teacher, labels, t, 1.0)) == pytest.approx(hard, rel=1e-6)
    assert float(distill_loss(teacher, teacher, labels, t, 0.0)) == pytest.approx(0.0, abs=1e-6)


def test_student_with_every_other_layer_learns_from_its_teacher(teacher):
    from safetensors import safe_open

    ws, teacher_id = teacher
    run = cli_json(
        ws, "train", "--task", "distill", "--teacher", str(teacher_id), "--layers-from-teacher", "2",
        "--dataset", "support_tickets", "--max-steps", "4", "--batch-size", "16", "--temperature", "3",
        "--alpha", "0.4", "--wait",
    )  # fmt: skip
    assert run["status"] == "completed", run.get("reason")
    assert run["task"] == "text-classification" and run["config"]["teacher"] == teacher_id  # the data's task
    metrics = run["metrics"]
    assert 0 <= metrics["eval_accuracy"] <= 1 and metrics["teacher_run"] == teacher_id
    assert metrics["student_layers"] == 1 and metrics["total_params"] < metrics["teacher_params"]
    # the saved student loads as a plain 1-layer classifier with the teacher's classes
    folder = ws / "runs" / str(run["id"]) / "model"
    with safe_open(folder / "model.safetensors", "pt") as f:
        layers = {k.split(".")[3] for k in f.keys() if k.startswith("bert.encoder.layer.")}  # noqa: SIM118
    assert layers == {"0"}
    log = (ws / "runs" / str(run["id"]) / "log.txt").read_text()
    assert "teacher scored" in log and "cached" in log


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--alpha", "1.5"], "setting 'alpha' must be in [0, 1]"),
        (["--temperature", "0"], "setting 'temperature' must be above 0"),
        (["--teacher", "99"], "run 99 not found"),
    ],
)
def test_bad_settings_are_refused_before_anything_starts(teacher, args, message):
    ws, teacher_id = teacher
    before = cli_json(ws, "runs", "list")
    base = ["train", "--task", "distill", "--dataset", "support_tickets", "--teacher", str(teacher_id)]
    proc = cli(ws, *base, *args, "--json")
    assert proc.returncode == 2 and message in proc.stderr and proc.stderr.count("\n") == 1, proc.stderr
    assert cli_json(ws, "runs", "list") == before


def test_teacher_must_be_completed_and_of_the_data_task(teacher, tmp_path):
    from backend.config import RunConfig
    from backend.runs.queue import create_run
    from backend.services import Services

    ws, teacher_id = teacher
    services = Services.open(ws)
    queued = create_run(services.database, services.workspace, RunConfig.from_dict({
        "dataset": "support_tickets", "task": "text-classification", "max_steps": 1,
    }))  # fmt: skip
    proc = cli(ws, "train", "--task", "distill", "--teacher", str(queued.id), "--dataset", "support_tickets", "--json")
    assert proc.returncode == 2 and f"run {queued.id} is queued; choose a completed run" in proc.stderr
    cli_json(ws, "runs", "cancel", str(queued.id))
    add_digits(ws, tmp_path)
    before = cli_json(ws, "runs", "list")
    proc = cli(ws, "train", "--task", "distill", "--teacher", str(teacher_id), "--dataset", "digits", "--json")
    assert proc.returncode == 2 and f"run {teacher_id} is a text-classification run but dataset 'digits'" in proc.stderr
    assert cli_json(ws, "runs", "list") == before


@pytest.mark.slow
def test_image_student_learns_from_its_teacher_per_augmented_batch(tmp_path):
    """Digits: a MobileNetV3-small teacher teaches a ResNet-18 student (scored on each augmented batch)."""
    ws = tmp_path / "ws"
    add_digits(ws, tmp_path)
    common = ["--dataset", "digits", "--max-steps", "2", "--batch-size", "8", "--wait"]
    teacher = cli_json(ws, "train", "--task", "image-classification", "--model", "mobilenet_v3_small", *common)
    assert teacher["status"] == "completed", teacher.get("reason")
    student = cli_json(
        ws, "train", "--task", "distill", "--teacher", str(teacher["id"]), "--model", "resnet18", *common
    )
    assert student["status"] == "completed", student.get("reason")
    assert student["task"] == "image-classification" and student["metrics"]["teacher_run"] == teacher["id"]
    assert 0 <= student["metrics"]["eval_accuracy"] <= 1
    log = (ws / "runs" / str(student["id"]) / "log.txt").read_text()
    assert "distilling run" in log and "cached" not in log  # images: the teacher scores each batch
    proc = cli(ws, "train", "--task", "distill", "--teacher", str(teacher["id"]), "--layers-from-teacher", "2",
               "--dataset", "digits", "--json")  # fmt: skip
    assert proc.returncode == 2 and "for images choose a smaller --model" in proc.stderr
