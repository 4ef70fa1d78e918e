"""Playground actions: a run's (or a base model's) greedy chat reply, class probabilities, batch predictions."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from backend.alignment import CHAT_TASKS
from backend.config import GREEDY, GenerationConfig
from backend.services import Services


def predict(
    services: Services,
    run_id: int,
    prompt: str = "",
    image: str | Path | bytes | None = None,
    dataset: str = "",
    split: str = "",
    out: str | None = None,
    max_new_tokens: int = GREEDY.max_new_tokens,
    answer: str | None = None,
) -> dict[str, Any]:
    """A completed run's prediction: a chat reply or class probabilities for one prompt, top classes for an
    image, a reward run's score of `answer` to `prompt`, or a whole dataset split scored with the engine's
    metrics and written as CSV (`out` or workspace/predictions/). The input must suit the run's task;
    nothing is written on a refusal."""
    from backend.playground.predict import batch_predict, classify, run_task, score_answer

    given = [name for name, v in (("--prompt", prompt), ("--image", image), ("--dataset", dataset)) if v]
    if len(given) != 1:
        why = "nothing" if not given else " and ".join(given)
        raise ValueError(f"give one of --prompt TEXT, --image FILE or --dataset D --split S (got {why})")
    task = run_task(services.database, run_id)
    if answer is not None and task != "reward":
        raise ValueError(f"run {run_id} is a {task} run; --answer is for reward runs, which score answers")
    if task == "reward":
        if not prompt.strip() or not (answer or "").strip():
            raise ValueError(f"run {run_id} is a reward run: it scores an answer; give --prompt TEXT --answer TEXT")
        return score_answer(services.database, services.workspace, run_id, prompt, answer)
    if dataset:
        if not split:
            raise ValueError("--dataset needs --split (train, validation or test) naming the rows to predict")
        return batch_predict(services.database, services.workspace, run_id, dataset, split, out=out)
    if out:
        raise ValueError("--out names the CSV of a --dataset prediction; leave it out for one prompt or image")
    if task in CHAT_TASKS:
        if image:
            raise ValueError(f"run {run_id} is a chat (sft) run; give --prompt TEXT, not an image")
        return {"task": task, **chat(services, run_id, prompt, max_new_tokens)}
    return classify(services.database, services.workspace, run_id, text=prompt or None, image=image or None)


def chat(
    services: Services,
    run_id: int | str,
    prompt: str,
    max_new_tokens: int = GREEDY.max_new_tokens,
    system: str = "",
    **sampling: Any,
) -> dict[str, Any]:
    """One reply from a completed run's model, or (a name, folder or hub id) a base model: greedy and
    repeatable by default; `sampling` takes the Playground's settings (temperature, top_p, top_k,
    repetition_penalty, seed, stop), checked as there."""
    from backend.playground.chat import load, stream_chat

    if not prompt.strip():
        raise ValueError("prompt is empty")
    gen = GenerationConfig(max_new_tokens=max_new_tokens, **{"temperature": 0.0, **sampling})
    model, tokenizer = load(services.database, services.workspace, run_id)
    pieces = list(stream_chat(model, tokenizer, [{"role": "user", "content": prompt}], gen, system=system))
    return {"run_id": run_id, "prompt": prompt, "reply": pieces[-1] if pieces else ""}


def base_chat_models(services: Services) -> list[str]:
    """Base models the Playground can chat with before training: bundled chat models and downloaded LMs."""
    from backend.models import chat_models

    return chat_models(services.workspace.models_dir)
