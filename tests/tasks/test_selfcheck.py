"""A chat run checks itself on its own training prompts: an untrained model fails, one that learned passes."""

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from backend.tasks.causal_lm import generate_answers
from backend.tasks.selfcheck import learned, sample, train_check
from webui.tabs.runs_views import header

ROWS = [
    {"messages": [{"role": "user", "content": "Who are you?"}, {"role": "assistant", "content": "I am Tuney."}]},
    {"messages": [{"role": "user", "content": "你是谁？"}, {"role": "assistant", "content": "我是 Tuney。"}]},
]


def _fit(model, tokenizer, rows, steps=150):
    """Overfit the rows (prompt and answer) with a plain loop: the model then repeats the targets."""
    ids = [tokenizer.apply_chat_template(r["messages"], tokenize=True, return_dict=True)["input_ids"] for r in rows]
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    model.train()
    for _ in range(steps):
        for seq in ids:
            x = torch.tensor([seq])
            loss = model(input_ids=x, labels=x).loss
            loss.backward()
            opt.step()
            opt.zero_grad()


def test_untrained_answers_miss_and_learned_ones_match(tiny_model):
    torch.manual_seed(0)
    tokenizer = AutoTokenizer.from_pretrained(tiny_model)
    model = AutoModelForCausalLM.from_pretrained(tiny_model)
    before = _check(model, tokenizer)
    assert before["train_check_n"] == 2 and before["train_check_matched"] == 0.0 and learned(before) is False
    shown = header(_summary(before))
    assert "did not pick up the data" in shown and "train longer" in shown

    _fit(model, tokenizer, ROWS)
    after = _check(model, tokenizer)
    assert after["train_check_matched"] == 1.0 and learned(after) is True, after
    assert "did not pick up" not in header(_summary(after))
    assert learned({"final_loss": 0.1}) is None  # a run without the check says nothing


def _check(model, tokenizer):
    _, answers, targets = generate_answers(model, tokenizer, sample(ROWS), 32, 8)
    return train_check(answers, targets)


def _summary(metrics):
    return {
        "id": 1, "name": "r", "status": "completed", "task": "sft", "method": "lora", "model": "m", "dataset": "d",
        "priority": 0, "step": 60, "total_steps": 60, "duration_seconds": 10, "metrics": {"final_loss": 0.5, **metrics},
    }  # fmt: skip
