"""Playground latency on the bundled SmolLM2-135M-Instruct: first load vs cached, time to first token, tokens/s.

    .venv/bin/python bench/playground_ttft.py               # models from ./workspace/models ($TUNEBOARD_MODELS_DIR)
    .venv/bin/python bench/playground_ttft.py --rounds 5 --new-tokens 64

Goes through the playground's own path (backend.playground.chat.load -> the model cache, stream_chat with a
TextIteratorStreamer), greedy, on an English and a Chinese question, the two interleaved round by round.
Time to first token = from the call to the first non-empty streamed text (prompt encoding, prefill and
the first decode step). Prints one JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

QUESTIONS = {"en": "Who are you?", "zh": "你是谁？"}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--new-tokens", type=int, default=64)
    args = p.parse_args()
    os.environ.setdefault("TUNEBOARD_MODELS_DIR", str(ROOT / "workspace" / "models"))
    os.environ.setdefault("HF_HUB_OFFLINE", "1")

    import torch

    from backend.config import DEFAULT_MODEL, GenerationConfig
    from backend.playground.cache import CACHE
    from backend.playground.chat import load, stream_chat
    from backend.services import Services

    services = Services.open(tempfile.mkdtemp(prefix="tb-bench-"))
    db, ws = services.database, services.workspace
    start = time.perf_counter()
    model, tokenizer = load(db, ws, DEFAULT_MODEL)
    cold = time.perf_counter() - start
    start = time.perf_counter()
    load(db, ws, DEFAULT_MODEL)
    cached = time.perf_counter() - start
    gen = GenerationConfig(max_new_tokens=args.new_tokens, temperature=0.0)
    list(stream_chat(model, tokenizer, [{"role": "user", "content": "hi"}], gen))  # warm-up
    ttft: dict[str, list[float]] = {k: [] for k in QUESTIONS}
    speed: dict[str, list[float]] = {k: [] for k in QUESTIONS}
    for _ in range(args.rounds):
        for lang, question in QUESTIONS.items():
            turns = [{"role": "user", "content": question}]
            start, first, text = time.perf_counter(), None, ""
            for text in stream_chat(model, tokenizer, turns, gen):
                if first is None and text.strip():
                    first = time.perf_counter() - start
            total = time.perf_counter() - start
            ttft[lang].append(first or total)
            tokens = len(tokenizer(text, add_special_tokens=False)["input_ids"])
            speed[lang].append(tokens / total)
    print(
        json.dumps(
            {
                "model": DEFAULT_MODEL,
                "threads": torch.get_num_threads(),
                "first_load_s": round(cold, 2),
                "cached_load_s": round(cached, 4),
                "cache_mb": round(CACHE.usage()["used_bytes"] / 1024**2, 1),
                "ttft_ms_median": {k: round(1000 * statistics.median(v), 1) for k, v in ttft.items()},
                "ttft_ms_min": {k: round(1000 * min(v), 1) for k, v in ttft.items()},
                "tokens_per_s_median": {k: round(statistics.median(v), 1) for k, v in speed.items()},
                "rounds": args.rounds,
                "new_tokens": args.new_tokens,
            },
            ensure_ascii=False,
        )
    )


if __name__ == "__main__":
    main()
