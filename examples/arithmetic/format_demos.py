"""Write a few training prompts of this example with their answers in the required format, as chat rows.

The bundled SmolLM2-135M-Instruct almost never replies as `<answer>NUMBER</answer>` on its own, so
GRPO, which learns only from differences between the rewards of answers to the same prompt, gets no
signal from a `format` reward. A short SFT run on a few formatted answers first, then GRPO from that
run (`--from-run`), is the dependable recipe (README.md in this folder). The rows come from
train.jsonl only (the held-out validation.jsonl stays unseen), the first COUNT of each language.

    python examples/arithmetic/format_demos.py --out demos.jsonl        # 16 English + 8 Chinese rows
    python -m backend.cli datasets add demos.jsonl --name arithmetic-demos
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

HERE = Path(__file__).resolve().parent


def demos(english: int = 16, chinese: int = 8) -> list[dict]:
    """Chat rows (`messages`: the prompt, then `<answer>N</answer>`) from the first training prompts."""
    rows = [json.loads(line) for line in (HERE / "train.jsonl").read_text(encoding="utf-8").splitlines() if line]
    zh = [r for r in rows if r["prompt"].startswith("计算")][:chinese]
    en = [r for r in rows if not r["prompt"].startswith("计算")][:english]
    return [
        {
            "messages": [
                {"role": "user", "content": r["prompt"]},
                {"role": "assistant", "content": f"<answer>{r['answer']}</answer>"},
            ]
        }
        for r in en + zh
    ]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", required=True, help="the .jsonl file to write")
    p.add_argument("--english", type=int, default=16, help="English rows (default 16)")
    p.add_argument("--chinese", type=int, default=8, help="Chinese rows (default 8)")
    args = p.parse_args()
    rows = demos(args.english, args.chinese)
    text = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)
    Path(args.out).write_text(text, encoding="utf-8")
    print(f"{len(rows)} rows -> {args.out}")


if __name__ == "__main__":
    main()
