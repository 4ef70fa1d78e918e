"""Chat distillation: the token-level loss is the classifier formula per answer token, a fine-tuned tiny
chat model teaches a thinner copy of itself, and a student with another tokenizer is refused."""

from __future__ import annotations

import json

import pytest

from tests.conftest import cli, cli_json, write_alpaca


@pytest.fixture(scope="module")
def chat_teacher(tmp_path_factory, tiny_model):
    """A completed LoRA SFT run of the tiny chat model: the teacher."""
    ws = tmp_path_factory.mktemp("distill-chat") / "ws"
    data = write_alpaca(tmp_path_factory.mktemp("data") / "sums.json", n=16)
    cli_json(ws, "datasets", "add", str(data), "--name", "sums")
    run = cli_json(ws, "train", "--dataset", "sums", "--model", str(tiny_model), "--max-steps", "2", "--wait")
    assert run["status"] == "completed", run.get("reason")
    return ws, run["id"]


def test_token_loss_is_the_formula_on_the_answer_tokens_only():
    import torch

    from backend.compress.loss import distill_loss, token_distill_loss

    torch.manual_seed(0)
    student, teacher = torch.randn(1, 4, 7), torch.randn(1, 4, 9)  # the teacher's vocabulary is padded wider
    labels = torch.tensor([[-100, -100, 2, 3]])  # the prompt has no labels; logits at i predict token i + 1
    expected = distill_loss(student[0, 1:3], teacher[0, 1:3, :7], torch.tensor([2, 3]), 2.0, 0.3)
    assert float(token_distill_loss(student, teacher, labels, 2.0, 0.3)) == pytest.approx(float(expected), rel=1e-6)
    assert float(token_distill_loss(student, student, labels, 2.0, 0.0)) == pytest.approx(0.0, abs=1e-6)


def test_a_chat_student_with_every_other_layer_learns_from_its_teacher(chat_teacher):
    ws, teacher_id = chat_teacher
    run = cli_json(
        ws, "train", "--task", "distill", "--teacher", str(teacher_id), "--layers-from-teacher", "2",
        "--dataset", "sums", "--max-steps", "3", "--wait",
    )  # fmt: skip
    assert run["status"] == "completed", run.get("reason")
    assert run["task"] == "sft" and run["method"] == "full"  # a thinned student trains in full by default
    metrics = run["metrics"]
    assert metrics["teacher_run"] == teacher_id and metrics["student_layers"] == 1
    assert metrics["total_params"] < metrics["teacher_params"] and metrics["final_loss"] > 0
    config = json.loads((ws / "runs" / str(run["id"]) / "model" / "config.json").read_text())
    assert config["num_hidden_layers"] == 1  # the saved student is a plain 1-layer model
    answer = cli_json(ws, "chat", str(run["id"]), "--prompt", "What is 2 plus 2?", "--max-new-tokens", "4")
    assert isinstance(answer["reply"], str)  # it loads in the playground like any run


@pytest.fixture
def other_tokenizer_model(tmp_path):
    """A tiny chat model whose tokenizer (a BPE of its own) shares nothing with the teacher's."""
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.train_from_iterator(["a different corpus"], trainers.BpeTrainer(vocab_size=300, special_tokens=["<|im_end|>"]))
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=bpe, eos_token="<|im_end|>", pad_token="<|im_end|>")
    other = tmp_path / "other"
    LlamaForCausalLM(
        LlamaConfig(vocab_size=len(tokenizer), hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                    num_attention_heads=2, num_key_value_heads=1)
    ).save_pretrained(other)  # fmt: skip
    tokenizer.save_pretrained(other)
    return other


def test_a_student_with_another_tokenizer_or_an_adapter_is_refused(chat_teacher, other_tokenizer_model):
    ws, teacher_id = chat_teacher
    other = other_tokenizer_model
    before = cli_json(ws, "runs", "list")

    refused = cli(
        ws, "train", "--task", "distill", "--teacher", str(teacher_id), "--model", str(other), "--dataset", "sums"
    )
    assert (
        refused.returncode == 2 and "does not share teacher run" in refused.stderr and "Traceback" not in refused.stderr
    )
    adapter = cli(
        ws, "train", "--task", "distill", "--teacher", str(teacher_id), "--layers-from-teacher", "2",
        "--method", "lora", "--dataset", "sums",
    )  # fmt: skip
    assert adapter.returncode == 2 and "method full or freeze" in adapter.stderr
    assert cli_json(ws, "runs", "list") == before  # nothing queued


def test_sequence_level_distillation_teaches_a_student_with_another_tokenizer_the_teachers_answers(
    chat_teacher, other_tokenizer_model, tiny_model
):
    ws, _ = chat_teacher
    # A teacher that has learnt to write answers (the 2-step one still ends at once, with nothing to teach).
    teacher_id = cli_json(
        ws, "train", "--dataset", "sums", "--model", str(tiny_model), "--method", "full", "--lr", "3e-2",
        "--max-steps", "24", "--wait",
    )["id"]  # fmt: skip
    run = cli_json(
        ws, "train", "--task", "distill", "--teacher", str(teacher_id), "--model", str(other_tokenizer_model),
        "--sequence-level", "--method", "full", "--chat-template", "chatml", "--dataset", "sums", "--max-steps", "2",
        "--cutoff-len", "64", "--wait",
    )  # fmt: skip
    assert run["status"] == "completed", run.get("reason")
    assert run["task"] == "sft" and run["config"]["sequence_level"] is True
    metrics = run["metrics"]
    assert metrics["teacher_run"] == teacher_id and metrics["teacher_answers"] == 16  # each training prompt, once
    log = (ws / "runs" / str(run["id"]) / "log.txt").read_text()
    assert f"teacher run {teacher_id} answered {metrics['teacher_answers']} of" in log
