"""A completed reward run is usable through the CLI: it scores a prompt + answer (`predict --answer`),
a GRPO run learns from it (`--reward reward_model:RUN`), and it exports as a merged one-score classifier
that scores like the run does; a GRPO policy chats and exports like an SFT run."""

from __future__ import annotations

import json

import pytest

from tests.conftest import cli, cli_json

PAIRS = [{"prompt": f"What is {i} plus {i}?", "chosen": f"{2 * i}.", "rejected": f"Let me think, maybe {2 * i + 1}."}
         for i in range(8)]  # fmt: skip
PROMPTS = [{"prompt": f"What is {i} plus {i}?", "answer": str(2 * i)} for i in range(8)]


def _jsonl(path, rows):
    path.write_text("\n".join(json.dumps(r) for r in rows), encoding="utf-8")
    return str(path)


def test_a_reward_run_scores_answers_rewards_grpo_and_exports(tiny_model, tmp_path):
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    ws = tmp_path / "ws"
    cli_json(ws, "datasets", "add", _jsonl(tmp_path / "pairs.jsonl", PAIRS), "--name", "pairs")
    cli_json(ws, "datasets", "add", _jsonl(tmp_path / "prompts.jsonl", PROMPTS), "--name", "prompts")
    common = ["--model", str(tiny_model), "--max-steps", "2", "--batch-size", "4", "--lora-rank", "4", "--wait"]
    reward = cli_json(ws, "train", "--task", "reward", "--dataset", "pairs", *common)
    assert reward["status"] == "completed", reward["reason"]

    scored = cli_json(ws, "predict", str(reward["id"]), "--prompt", "What is 2 plus 2?", "--answer", "4.")
    assert isinstance(scored["score"], float)
    unscored = cli(ws, "predict", str(reward["id"]), "--prompt", "What is 2 plus 2?")
    assert unscored.returncode == 2 and "give --prompt TEXT --answer TEXT" in unscored.stderr

    grpo = cli_json(ws, "train", "--task", "grpo", "--dataset", "prompts", "--reward", f"reward_model:{reward['id']}",
                    "--reward", "format", "--num-generations", "2", "--max-completion-len", "8", *common)  # fmt: skip
    assert grpo["status"] == "completed", grpo["reason"]
    assert {"reward_reward_model", "reward_format"} <= set(grpo["metrics"])
    not_reward = cli(ws, "train", "--task", "grpo", "--dataset", "prompts", "--reward", f"reward_model:{grpo['id']}")
    assert not_reward.returncode == 2 and f"run {grpo['id']} is not a reward run" in not_reward.stderr

    exported = cli_json(ws, "export", str(reward["id"]), "--format", "merged")
    assert exported["verification"]["ok"]
    model = AutoModelForSequenceClassification.from_pretrained(exported["path"]).eval()
    tokenizer = AutoTokenizer.from_pretrained(exported["path"])
    chat = [{"role": "user", "content": "What is 2 plus 2?"}, {"role": "assistant", "content": "4."}]
    ids = tokenizer.apply_chat_template(chat, tokenize=False)
    score = model(**tokenizer(ids, return_tensors="pt")).logits[0, 0].item()
    assert score == pytest.approx(scored["score"], abs=1e-3)  # the export scores as the run does

    reply = cli_json(ws, "chat", str(grpo["id"]), "--prompt", "What is 2 plus 2?", "--max-new-tokens", "4")
    assert isinstance(reply["reply"], str)
    assert cli_json(ws, "export", str(grpo["id"]), "--format", "merged")["verification"]["ok"]
