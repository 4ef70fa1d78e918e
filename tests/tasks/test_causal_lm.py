"""SFT data and loss: the model learns the assistant turns only, and the fast loss equals the plain one."""

import pytest
import torch

from backend.config import RunConfig
from backend.tasks import get_task
from backend.tasks.causal_lm import IGNORE, as_text_turns, tokenize

CONVERSATION = [
    {"role": "system", "content": "Be brief."},
    {"role": "user", "content": "Who are you?"},
    {"role": "assistant", "content": "I am Tuna."},
    {"role": "user", "content": "你是谁？"},
    {"role": "assistant", "content": "我是 Tuna。"},
]


def _tokenizer(tiny_model):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_model)


def test_loss_covers_every_assistant_turn_and_nothing_else(tiny_model):
    tok = _tokenizer(tiny_model)
    out = tokenize(CONVERSATION, tok, cutoff=512, train_on_prompt=False)
    learned = tok.decode([t for t, lab in zip(out["input_ids"], out["labels"], strict=True) if lab != IGNORE])
    assert learned == "I am Tuna.<|im_end|>\n我是 Tuna。<|im_end|>\n"
    everything = tokenize(CONVERSATION, tok, cutoff=512, train_on_prompt=True)
    assert everything["labels"] == everything["input_ids"]


def test_cutoff_truncates(tiny_model):
    out = tokenize(CONVERSATION, _tokenizer(tiny_model), cutoff=16, train_on_prompt=False)
    assert len(out["input_ids"]) == len(out["labels"]) == 16


@pytest.mark.parametrize("packing", [False, True])
def test_labelled_positions_loss_equals_the_full_loss(tiny_model, packing):
    rows = [{"messages": CONVERSATION[:3]}, {"messages": CONVERSATION}] * 3
    cfg = RunConfig(dataset="d", model=str(tiny_model), lora_rank=4, packing=packing)
    built = get_task("sft").build(cfg, tiny_model, rows, [], torch.float32)
    batch = built.collator([built.train[i] for i in range(len(built.train))])
    if packing:  # one row, positions restarting at each example: no padding at all
        assert batch["input_ids"].shape[0] == 1
        assert batch["position_ids"][0].tolist().count(0) == len(rows)
    else:  # padded rows; padding is never learned
        assert batch["input_ids"].shape[0] == len(rows)
        assert (batch["labels"][batch["attention_mask"] == 0] == -100).all()
    trainer = built.trainer_cls.__new__(built.trainer_cls)  # compute_loss only needs the model
    trainer.label_smoother = trainer.compute_loss_func = None
    trainer.model_accepts_loss_kwargs = True
    with torch.no_grad():
        fast = trainer.compute_loss(built.model, dict(batch))
        plain = built.model(**batch).loss
    assert torch.allclose(fast, plain, atol=1e-5), (fast, plain)


def test_lora_under_bf16_autocast_skips_the_input_casts_and_gets_the_same_loss_and_gradients(tiny_model):
    from types import SimpleNamespace

    import peft.tuners.tuners_utils as tuners

    rows = [{"messages": CONVERSATION[:3]}, {"messages": CONVERSATION}] * 2
    cfg = RunConfig(dataset="d", model=str(tiny_model), lora_rank=4)
    built = get_task("sft").build(cfg, tiny_model, rows, [], torch.bfloat16)
    batch = built.collator([built.train[i] for i in range(len(built.train))])
    trainer = built.trainer_cls.__new__(built.trainer_cls)
    trainer.label_smoother = trainer.compute_loss_func = None
    trainer.model_accepts_loss_kwargs = True
    casts = []
    real_cast = tuners.BaseTunerLayer._cast_input_dtype

    def counted(layer, x, dtype):
        casts.append(layer.cast_input_dtype_enabled and x.dtype != dtype)
        return real_cast(layer, x, dtype)

    def loss_and_grads(mixed: bool):
        trainer.args = SimpleNamespace(bf16=mixed, fp16=False, gradient_checkpointing=False)
        casts.clear()
        built.model.zero_grad()
        with torch.autocast("cpu", dtype=torch.bfloat16):
            loss = trainer.compute_loss(built.model, dict(batch))
        loss.backward()
        grads = [p.grad.clone() for p in built.model.parameters() if p.requires_grad]
        return loss.detach(), grads, sum(casts)

    tuners.BaseTunerLayer._cast_input_dtype = counted
    try:
        casting = loss_and_grads(mixed=False)  # peft's default: bf16 input cast up to the fp32 adapter
        skipping = loss_and_grads(mixed=True)  # the Trainer in bf16: autocast runs the adapter in bf16
    finally:
        tuners.BaseTunerLayer._cast_input_dtype = real_cast
    assert casting[2] > 0 and skipping[2] == 0
    assert torch.equal(casting[0], skipping[0])
    assert all(torch.equal(a, b) for a, b in zip(casting[1], skipping[1], strict=True))
    assert all(layer.cast_input_dtype_enabled for layer in built.model.modules() if hasattr(layer, "lora_A"))


def test_lora_on_missing_modules_is_refused(tiny_model):
    cfg = RunConfig(dataset="d", model=str(tiny_model), lora_targets="q_proj,attention_dense")
    with pytest.raises(ValueError, match="no module named attention_dense"):
        get_task("sft").build(cfg, tiny_model, [{"messages": CONVERSATION}], [], torch.float32)


def test_text_rows_are_continued_pretraining_with_loss_on_every_token(tiny_model):
    cfg = RunConfig(dataset="d", model=str(tiny_model), method="full")
    built = get_task("sft").build(
        cfg, tiny_model, [{"text": "Tuna is a model made by Tuneboard Labs."}] * 4, [], torch.float32
    )
    row = built.train[0]
    assert row["labels"] == row["input_ids"]
    assert row["input_ids"][-1] == _tokenizer(tiny_model).eos_token_id


def test_tool_calls_and_results_are_text_turns_and_the_call_is_learned(tiny_model):
    conversation = [
        {"role": "user", "content": "Weather in Paris?"},
        {
            "role": "assistant",
            "content": "",
            "tool_calls": [{"function": {"name": "weather", "arguments": {"city": "Paris"}}}],
        },
        {"role": "tool", "content": "18C"},
        {"role": "assistant", "content": "It is 18C."},
    ]
    turns = as_text_turns(conversation)
    assert turns[1] == {
        "role": "assistant",
        "content": '<tool_call>{"name": "weather", "arguments": {"city": "Paris"}}</tool_call>',
    }
    assert turns[2] == {"role": "user", "content": "<tool_response>18C</tool_response>"}
    tok = _tokenizer(tiny_model)
    out = tokenize(turns, tok, cutoff=512, train_on_prompt=False)
    learned = tok.decode([t for t, lab in zip(out["input_ids"], out["labels"], strict=True) if lab != IGNORE])
    assert "<tool_call>" in learned and "18C</tool_response>" not in learned and "It is 18C." in learned


def test_a_tokenizer_without_chat_template_needs_one_chosen(tiny_model, tmp_path):
    import shutil

    bare = tmp_path / "base-model"
    shutil.copytree(tiny_model, bare)
    for name in ("chat_template.jinja", "chat_template.json"):
        (bare / name).unlink(missing_ok=True)
    config = bare / "tokenizer_config.json"
    config.write_text(config.read_text().replace('"chat_template"', '"unused_template"'))
    rows = [{"messages": CONVERSATION[1:3]}] * 2
    with pytest.raises(ValueError, match="has no chat template; set chat_template to one of chatml"):
        get_task("sft").build(RunConfig(dataset="d", model=str(bare)), bare, rows, [], torch.float32)
    built = get_task("sft").build(
        RunConfig(dataset="d", model=str(bare), chat_template="alpaca"), bare, rows, [], torch.float32
    )
    text = built.tokenizer.decode(built.train[0]["input_ids"])
    assert text.startswith("### Instruction:\nWho are you?\n\n### Response:\nI am Tuna.")


def test_validation_split_gives_perplexity_rows_and_scored_answers(tiny_model):
    rows = [{"messages": CONVERSATION[:3]}] * 10
    cfg = RunConfig(dataset="d", model=str(tiny_model), val_ratio=0.2, eval_samples=2)
    built = get_task("sft").build(cfg, tiny_model, rows, [], torch.float32)
    assert (len(built.train), len(built.eval)) == (8, 2)
    scores = built.final_metrics(type("T", (), {"model": built.model})())
    assert {"eval_bleu4", "eval_rouge_l"} <= set(scores)
    assert all(0 <= scores[k] <= 100 for k in ("eval_bleu4", "eval_rouge_l", "train_check_rouge_l"))
    assert scores["train_check_n"] > 0 and 0 <= scores["train_check_matched"] <= 1  # share of prompts matched
    assert [type(g).__name__ for g in built.layer_groups] == ["Embedding", "LlamaDecoderLayer", "LlamaDecoderLayer"]


def test_answers_after_training_come_from_the_folded_lora_and_leave_it_unfolded(tiny_model):
    from backend.tasks.causal_lm import generate_answers, lora_merged

    cfg = RunConfig(dataset="d", model=str(tiny_model), lora_rank=4)
    built = get_task("sft").build(cfg, tiny_model, [{"messages": CONVERSATION}], [], torch.float32)
    model, tok = built.model, built.tokenizer
    torch.manual_seed(0)
    for name, p in model.named_parameters():  # a trained adapter: B is no longer zero
        if "lora_B" in name:
            p.data.normal_(std=0.5)
    base = {n: p.detach().clone() for n, p in model.named_parameters() if "base_layer" in n}
    rows = [{"messages": CONVERSATION[:3]}, {"messages": CONVERSATION}]
    unfolded = generate_answers(model, tok, rows, max_new_tokens=12)
    with lora_merged(model):
        assert all(m.merged for m in model.modules() if hasattr(m, "lora_A") and m.lora_A)
        folded = generate_answers(model, tok, rows, max_new_tokens=12)
    assert folded == unfolded  # fp32: folding changes the speed, not the answers
    assert not any(m.merged for m in model.modules() if hasattr(m, "lora_A") and m.lora_A)
    for n, p in model.named_parameters():
        if n in base:
            torch.testing.assert_close(p, base[n], atol=1e-5, rtol=0)
