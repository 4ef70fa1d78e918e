"""Playground inference: load a run's result (adapter on its base, or a full model) and stream replies.

Loaded models live in backend.playground.cache.CACHE (least recently used unloaded past a memory bound),
so switching between runs, or comparing a run with its base side by side, costs one load each.

    model, tokenizer = load(database, workspace, 3)                     # run 3's chat model
    for text in stream_chat(model, tokenizer, [{"role": "user", "content": "你是谁？"}]): ...
    for answers in stream_side_by_side(database, workspace, ["base", 3], [turns, turns]): ...
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from backend import cpu
from backend.alignment import CHAT_TASKS
from backend.config import CHAT, GREEDY, GenerationConfig
from backend.playground.cache import CACHE
from backend.runs.results import model_folder
from backend.workspace import Workspace
from db import Database

log = logging.getLogger(__name__)


def require_chat_run(database: Database, run_id: int) -> None:
    """Refuses (ValueError, with the reason) a run the chat playground cannot talk to: a classifier."""
    from backend.runs.queue import get_run

    task = (get_run(database, run_id).config or {}).get("task", "sft")
    if task not in CHAT_TASKS:  # preference- and RL-tuned policies are chat models too
        raise ValueError(
            f"run {run_id} is a {task} run; the playground chats with chat (sft) runs. "
            "Its validation scores are on the run page, and Export gives the model as a folder to load"
        )


def chat_source(value: int | str) -> int | str:
    """What the Playground's chat list or the CLI's `chat` names: a run id (a number), else a base model."""
    return int(value) if isinstance(value, int) or str(value).isdigit() else str(value)


def load(database: Database, workspace: Workspace, source: str | int) -> tuple[Any, Any]:
    """(model, tokenizer) for a run id, or for a catalog model name / folder (the base model); cached."""
    key = cache_key(database, workspace, source, "run") if isinstance(source, int) else f"model:{source}"
    if isinstance(source, int):
        require_chat_run(database, source)
        model_folder(database, workspace, source)  # refuses a run that is not completed before waiting on the lock
    return CACHE.get(key, source_label(database, source), lambda: _load_chat(database, workspace, source))


def cache_key(database: Database, workspace: Workspace, run_id: int, kind: str) -> str:
    """A run's model in the cache: its workspace, id and creation time, so a run deleted and its id
    reused (SQLite hands out the highest id again), or run 1 of another workspace, is never served."""
    from backend.runs.queue import get_run

    return f"{kind}:{workspace.root}:{run_id}:{get_run(database, run_id).created_at.isoformat()}"


def _load_chat(database: Database, workspace: Workspace, source: str | int) -> tuple[Any, Any]:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from backend.models.catalog import resolve_model

    if isinstance(source, int):
        base, adapter, code = model_folder(database, workspace, source)
    else:  # a base model by name or folder: never its own code (resolve_model refuses such folders)
        base, adapter, code = resolve_model(source, workspace.models_dir), None, False
    tokenizer = AutoTokenizer.from_pretrained(adapter or base, trust_remote_code=code)
    model = AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32, trust_remote_code=code)
    if adapter is not None:
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, adapter).merge_and_unload()  # merged: no adapter cost per token
    model.eval()
    return model, tokenizer


def source_label(database: Database, source: str | int) -> str:
    """How a loaded model is named on screen: '#3 tuna' for a run, the model name for a base model."""
    if isinstance(source, int):
        from backend.runs.queue import get_run

        return f"#{source} {get_run(database, source).name}"
    return Path(str(source)).name if "/" in str(source) and Path(str(source)).exists() else str(source)


def base_of(database: Database, run_id: int) -> str:
    """The model a chat run started from (a catalog name or a folder): the side-by-side baseline."""
    from backend.runs.queue import get_run

    require_chat_run(database, run_id)
    return get_run(database, run_id).model


def stream_chat(
    model: Any,
    tokenizer: Any,
    messages: list[dict[str, str]],
    gen: GenerationConfig = CHAT,
    system: str = "",
) -> Iterator[str]:
    """Yield the reply text as it grows, token by token; it ends before the first of `gen.stop`.

    `system` (when given and the conversation has none) goes first as the system message.
    """
    from transformers import TextIteratorStreamer

    if not messages or messages[-1]["role"] != "user":
        raise ValueError("the conversation must end with a user message")
    if system.strip() and messages[0]["role"] != "system":
        messages = [{"role": "system", "content": system.strip()}, *messages]
    try:
        inputs = tokenizer.apply_chat_template(
            messages, add_generation_prompt=True, return_tensors="pt", return_dict=True
        )
    except Exception as e:  # e.g. a template that takes no system message
        raise ValueError(f"the model's chat template cannot render this conversation ({e})") from None
    streamer = TextIteratorStreamer(tokenizer, skip_prompt=True, skip_special_tokens=True, timeout=120)
    kwargs = dict(**inputs, streamer=streamer, max_new_tokens=gen.max_new_tokens, pad_token_id=tokenizer.pad_token_id)
    if gen.temperature > 0:
        kwargs.update(do_sample=True, temperature=gen.temperature, top_p=gen.top_p, top_k=gen.top_k)
    else:
        kwargs.update(do_sample=False)
    if gen.repetition_penalty != 1.0:
        kwargs["repetition_penalty"] = gen.repetition_penalty
    if gen.stop:  # generation halts at a stop text; the text itself is cut off below
        kwargs.update(stop_strings=list(gen.stop), tokenizer=tokenizer)
    halt = threading.Event()  # set when the reader stops (stop text, closed page): generation ends at its next token
    kwargs["stopping_criteria"] = _halt_when(halt)
    failures: list[Exception] = []

    def generate() -> None:
        import torch

        try:
            if gen.seed >= 0:
                torch.manual_seed(gen.seed)
            with torch.no_grad(), cpu.lease():  # the answer's share of the cores while runs train
                model.generate(**kwargs)
        except Exception as e:  # reported to the caller below, not lost in the thread
            failures.append(e)
            streamer.end()

    thread = threading.Thread(target=generate, daemon=True)
    thread.start()
    text = ""
    try:
        for piece in streamer:
            text += piece
            cut = _stop_at(text, gen.stop)
            if cut is not None:
                yield text[:cut]
                break
            yield text
    finally:  # also when the consumer goes away mid-answer (GeneratorExit): free the cores for the next one
        halt.set()
        thread.join()
    if failures:
        raise ValueError(f"generation failed: {failures[0]}")


def _halt_when(event: threading.Event) -> Any:
    """A stopping criterion that ends generation once `event` is set."""
    import torch
    from transformers import StoppingCriteria, StoppingCriteriaList

    class Halt(StoppingCriteria):
        def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> Any:
            return torch.full((input_ids.shape[0],), event.is_set(), dtype=torch.bool, device=input_ids.device)

    return StoppingCriteriaList([Halt()])


def _stop_at(text: str, stops: Sequence[str]) -> int | None:
    """Where the first stop text begins in `text`, or None."""
    found = [i for i in (text.find(s) for s in stops) if i >= 0]
    return min(found) if found else None


def stream_side_by_side(
    database: Database,
    workspace: Workspace,
    sources: Sequence[str | int],
    conversations: Sequence[list[dict[str, str]]],
    gen: GenerationConfig = CHAT,
    system: str = "",
) -> Iterator[list[str]]:
    """The same question to several models, one after another, each answer streamed.

    `sources` are run ids or base model names (the caller resolves a run's base with `base_of`);
    `conversations` holds each column's own history ending with the new user message. Yields the
    answers of every column so far (columns not yet reached are ""). One model generates at a
    time: on a small CPU, two at once would each run at half speed and neither answer sooner.
    With the same seed, every column samples from the same random stream.
    """
    if len(sources) != len(conversations):
        raise ValueError(f"{len(sources)} models but {len(conversations)} conversations")
    answers = [""] * len(sources)
    for i, (source, turns) in enumerate(zip(sources, conversations, strict=True)):
        model, tokenizer = load(database, workspace, source)
        for text in stream_chat(model, tokenizer, turns, gen, system):
            answers[i] = text
            yield list(answers)
    if not sources:
        yield []


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
