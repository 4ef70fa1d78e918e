"""Playground inference: load a run's result (adapter on its base, or a full model) and stream replies.

One model is kept loaded at a time (keyed by run id, or the base model name), so switching runs
costs one load and chatting costs none.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from backend.config import CHAT, GREEDY, GenerationConfig
from backend.workspace import Workspace
from db import Database, RunStatus

log = logging.getLogger(__name__)

_lock = threading.Lock()
_loaded: dict[str, tuple[Any, Any]] = {}


def model_folder(database: Database, workspace: Workspace, run_id: int) -> tuple[Path, Path | None, bool]:
    """(base model folder, adapter folder or None, whether the model's own code may run) for a
    completed run. The last is the user's choice for the run (`trust_remote_code`), never the folder's."""
    from backend.catalog import resolve_model
    from backend.runs import get_run

    run = get_run(database, run_id)
    if run.status not in (RunStatus.completed, RunStatus.cancelled):
        raise ValueError(f"run {run_id} is {run.status.value}; only a completed run can be loaded")
    run_dir = workspace.run_dir(run_id)
    trusted = bool((run.config or {}).get("trust_remote_code"))
    if (run_dir / "adapter").is_dir():
        return resolve_model(run.model, workspace.models_dir, trusted), run_dir / "adapter", trusted
    if (run_dir / "model").is_dir():
        return run_dir / "model", None, trusted
    raise ValueError(f"run {run_id} has no saved model in {run_dir}")


def require_chat_run(database: Database, run_id: int) -> None:
    """Refuses (ValueError, with the reason) a run the chat playground cannot talk to: a classifier."""
    from backend.runs import get_run

    task = (get_run(database, run_id).config or {}).get("task", "sft")
    if task != "sft":
        raise ValueError(
            f"run {run_id} is a {task} run; the playground chats with chat (sft) runs. "
            "Its validation scores are on the run page, and Export gives the model as a folder to load"
        )


def load(database: Database, workspace: Workspace, source: str | int) -> tuple[Any, Any]:
    """(model, tokenizer) for a run id, or for a catalog model name / folder (the base model)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from backend.catalog import resolve_model

    key = f"run:{source}" if isinstance(source, int) else f"model:{source}"
    with _lock:
        if key in _loaded:
            return _loaded[key]
        if isinstance(source, int):
            require_chat_run(database, source)
            base, adapter, code = model_folder(database, workspace, source)
        else:  # a base model by name or folder: never its own code (resolve_model refuses such folders)
            base, adapter, code = resolve_model(source, workspace.models_dir), None, False
        tokenizer = AutoTokenizer.from_pretrained(adapter or base, trust_remote_code=code)
        model = AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32, trust_remote_code=code)
        if adapter is not None:
            from peft import PeftModel

            model = PeftModel.from_pretrained(model, adapter).merge_and_unload()  # merged: no adapter cost per token
        model.eval()
        _loaded.clear()
        _loaded[key] = (model, tokenizer)
        return model, tokenizer


def stream_chat(
    model: Any,
    tokenizer: Any,
    messages: list[dict[str, str]],
    gen: GenerationConfig = CHAT,
) -> Iterator[str]:
    """Yield the reply text as it grows, token by token."""
    from transformers import TextIteratorStreamer

    if not messages or messages[-1]["role"] != "user":
        raise ValueError("the conversation must end with a user message")
    inputs = tokenizer.apply_chat_template(messages, add_generation_prompt=True, return_tensors="pt", return_dict=True)
    streamer = TextIteratorStreamer(tokenizer, skip_prompt=True, skip_special_tokens=True, timeout=120)
    kwargs = dict(**inputs, streamer=streamer, max_new_tokens=gen.max_new_tokens, pad_token_id=tokenizer.pad_token_id)
    if gen.temperature > 0:
        kwargs.update(do_sample=True, temperature=gen.temperature, top_p=gen.top_p)
    else:
        kwargs.update(do_sample=False)
    failures: list[Exception] = []

    def generate() -> None:
        try:
            model.generate(**kwargs)
        except Exception as e:  # reported to the caller below, not lost in the thread
            failures.append(e)
            streamer.end()

    thread = threading.Thread(target=generate, daemon=True)
    thread.start()
    text = ""
    for piece in streamer:
        text += piece
        yield text
    thread.join()
    if failures:
        raise ValueError(f"generation failed: {failures[0]}")


def reply(model: Any, tokenizer: Any, prompt: str, gen: GenerationConfig = GREEDY) -> str:
    """The whole answer to one prompt (greedy by default: repeatable, for checks and the CLI)."""
    pieces = list(stream_chat(model, tokenizer, [{"role": "user", "content": prompt}], gen))
    return pieces[-1] if pieces else ""


def probe(model: Any, tokenizer: Any, items: list[dict[str, str]]) -> list[dict[str, Any]]:
    """Greedy answers to held-out prompts, each marked by whether it contains the expected text.

    `items` are {"prompt": ..., "expect": ...} (see examples/identity_heldout.json).
    """
    results = []
    for item in items:
        answer = reply(model, tokenizer, item["prompt"], GenerationConfig(max_new_tokens=48, temperature=0.0))
        results.append({**item, "answer": answer, "hit": item["expect"].lower() in answer.lower()})
    return results
