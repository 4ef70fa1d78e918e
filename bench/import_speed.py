"""Import speed and peak memory of a 100,000-row Alpaca JSONL (~100 MB), through the real CLI.

    .venv/bin/python bench/import_speed.py              # 100,000 rows
    .venv/bin/python bench/import_speed.py --rows 20000

Writes the file into a temporary folder, runs `python -m backend.cli datasets add FILE --json` in a
child process (a fresh workspace: database, Parquet, original copy), and reports wall time and the
child's peak resident memory (ru_maxrss). Target: <= 30 s and <= 1 GB.
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WORDS = [
    "the",
    "model",
    "learns",
    "from",
    "data",
    "every",
    "row",
    "is",
    "checked",
    "before",
    "anything",
    "is",
    "written",
    "tokens",
    "answer",
    "question",
]


def sentence(rng: random.Random, words: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(words)) + f" {rng.random():.6f}."


def write_rows(path: Path, rows: int) -> int:
    rng = random.Random(0)
    with path.open("w", encoding="utf-8") as f:
        for i in range(rows):
            row = {
                "instruction": sentence(rng, 30),
                "input": sentence(rng, 40) if i % 2 else "",
                "output": sentence(rng, 100),
                "system": "You are a helpful assistant." if i % 10 == 0 else "",
            }
            f.write(json.dumps(row) + "\n")
    return path.stat().st_size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "alpaca.jsonl"
        size = write_rows(data, args.rows)
        cmd = [sys.executable, "-m", "backend.cli", "--workspace", str(Path(tmp) / "ws"), "datasets", "add", str(data)]
        start = time.perf_counter()
        proc = subprocess.run([*cmd, "--json"], cwd=ROOT, capture_output=True, text=True, check=False)
        wall = time.perf_counter() - start
        if proc.returncode != 0:
            sys.exit(f"import failed: {proc.stderr.strip()}")
        peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        out = json.loads(proc.stdout)
    print(
        json.dumps(
            {
                "rows": out["num_rows"],
                "file_mb": round(size / 1024**2, 1),
                "wall_s": round(wall, 1),
                "peak_rss_mb": round(peak_mb),
                "rows_per_s": round(out["num_rows"] / wall),
                "within_target": wall <= 30 and peak_mb <= 1024,
            }
        )
    )


if __name__ == "__main__":
    main()
