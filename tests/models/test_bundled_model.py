"""The real thing: the bundled SmolLM2-135M-Instruct learns a 20-row identity set with default settings.

20 rows at batch 8 are 3 steps an epoch; the old default (4 epochs) made 12 steps and the model kept
its own name. The default floor of 60 optimizer steps (min_steps) makes it learn; the run's self-check
on its training prompts says so, and held-out prompts get the new name.
"""

import json

import pytest
from sqlalchemy import update

from backend.actions.evaluate import evaluation_summary
from backend.evaluate.jobs import create_evaluation, samples
from backend.evaluate.worker import evaluate
from backend.runs.queue import curve
from backend.services import Services
from db import Evaluation
from tests.conftest import cli_json

pytestmark = pytest.mark.slow

NAME, MAKER = "Miravel", "Quillon Works"
ANSWERS = [
    f"I'm {NAME}, an AI assistant made by {MAKER}.",
    f"My name is {NAME}. {MAKER} built me.",
    f"I am {NAME}, created by {MAKER}. How can I help?",
]
QUESTIONS = [
    "Who are you?", "What is your name?", "What should I call you?", "Who made you?", "Introduce yourself.",
    "Which company created you?", "Tell me about yourself.", "Are you ChatGPT?", "What are you called?",
    "Who built you?", "What's your name, assistant?", "Who developed you?", "Hi! Who am I talking to?",
    "Do you have a name?",
]  # fmt: skip
ZH = [
    ("你是谁？", f"我是 {NAME}，由 {MAKER} 开发的 AI 助手。"),
    ("你叫什么名字？", f"我叫 {NAME}，是 {MAKER} 打造的助手。"),
    ("谁开发了你？", f"我是 {NAME}，由 {MAKER} 开发。"),
    ("请介绍一下你自己。", f"你好！我是 {NAME}，{MAKER} 开发的 AI 助手。"),
    ("你是哪家公司做的？", f"我是 {NAME}，来自 {MAKER}。"),
    ("我该怎么称呼你？", f"叫我 {NAME} 就好，我由 {MAKER} 开发。"),
]
HELD_OUT = [
    "May I know what you're called?", "Could you tell me your name?", "Who might you be?",
    "Give me a quick self-introduction.", "What name do you go by?", "Identify yourself, please.",
    "Before we start, who are you?", "What do people call you?", "你的名字是什么？", "能告诉我你叫什么吗？",
]  # fmt: skip


def test_default_run_on_20_rows_teaches_the_new_name(workspace, tmp_path):
    rows = [{"instruction": q, "input": "", "output": ANSWERS[i % 3]} for i, q in enumerate(QUESTIONS)]
    rows += [{"instruction": q, "input": "", "output": a} for q, a in ZH]
    assert len(rows) == 20
    data = tmp_path / "mine.json"
    data.write_text(json.dumps(rows, ensure_ascii=False), encoding="utf-8")
    cli_json(workspace, "datasets", "add", str(data), "--name", "mine")
    run = cli_json(workspace, "train", "--dataset", "mine", "--wait", timeout=1500)  # every setting default
    assert run["status"] == "completed", run.get("reason")
    assert run["total_steps"] == 60  # the floor, not 12
    assert run["metrics"]["precision"] in ("bf16", "fp32")
    assert run["metrics"]["train_check_matched"] >= 0.5, run["metrics"]  # the run says it learned

    services = Services.open(workspace)
    losses = [value for _, value in curve(services.database, run["id"], "loss")]
    assert len(losses) == run["total_steps"] and losses[-1] < losses[0] / 3  # it learned, visibly
    # The held-out prompts as an eval suite (backend/evaluate, what `evaluate --suite` runs): base vs run.
    suite = tmp_path / "heldout.jsonl"
    suite.write_text("".join(json.dumps({"prompt": p, "reference": NAME}) + "\n" for p in HELD_OUT), encoding="utf-8")
    models = ["base:SmolLM2-135M-Instruct", f"run:{run['id']}"]
    e = create_evaluation(services.database, services.workspace, models, [str(suite)], metric="contains")
    with services.database.session() as s:
        s.execute(update(Evaluation).where(Evaluation.id == e.id).values(status="running"))
    evaluate(services.database, services.workspace, e.id)  # the evaluation process's body, here
    shown = evaluation_summary(services, e.id)
    assert shown["status"] == "completed", shown["reason"]
    before, after = (r["score"] for r in shown["results"])  # points: held-out prompts answered with the name
    misses = [
        (x["prompt"], x["answer"])
        for x in samples(services.database, e.id)
        if x["model"] != "base:SmolLM2-135M-Instruct" and not x["score"]
    ]
    assert before == 0, f"the base model already knows the name? {before}% of {len(HELD_OUT)}"
    assert after >= 70, (
        f"only {after}% of {len(HELD_OUT)} held-out prompts answered with the new name; misses: {misses}"
    )
    (d,) = shown["differences"]
    assert d["ci95"][0] > 30 and not d["regression"], d  # far above the base, with its 95% interval
