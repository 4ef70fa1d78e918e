"""SFT data and loss: the model learns the assistant turns only, and the fast loss equals the plain one."""

import pytest
import torch

from backend.config import RunConfig
from backend.tasks import get_task
from backend.tasks.causal_lm import IGNORE, tokenize

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


def test_lora_on_missing_modules_is_refused(tiny_model):
    cfg = RunConfig(dataset="d", model=str(tiny_model), lora_targets="q_proj,attention_dense")
    with pytest.raises(ValueError, match="no module named attention_dense"):
        get_task("sft").build(cfg, tiny_model, [{"messages": CONVERSATION}], [], torch.float32)
