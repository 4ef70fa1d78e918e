"""From submit to the first logged training step, with a tiny model: how long a person waits to see a curve.

    .venv/bin/python bench/runs_first_step.py [--repeat 3]

A supervisor runs as in the app (a thread, 1 s tick). Each round queues a LoRA run of a 2-layer
Llama (the tests' tiny model) and times until the worker, a cold `python -m backend.runs.worker`
process (imports, database, dataset, model, Trainer), has written its first loss point.
"""

from __future__ import annotations

import argparse
import atexit
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

BUDGET_S = 8.0


def tiny_model(target: Path) -> Path:
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from tests.conftest import _tiny_chatml_tokenizer

    tokenizer = _tiny_chatml_tokenizer()
    config = LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=2, max_position_embeddings=512, tie_word_embeddings=True,
        eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
    )  # fmt: skip
    torch.manual_seed(0)
    LlamaForCausalLM(config).save_pretrained(target)
    tokenizer.save_pretrained(target)
    return target


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of a live process so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeat", type=int, default=3)
    args = p.parse_args()

    from sqlalchemy import select

    from backend.config import RunConfig
    from backend.data import import_file
    from backend.runs.queue import create_run, get_run
    from backend.runs.supervisor import Supervisor
    from backend.services import Services
    from db import MetricPoint
    from tests.conftest import write_alpaca

    tmp = Path(tempfile.mkdtemp(prefix="tb-bench-first-"))
    atexit.register(shutil.rmtree, tmp, True)
    services = Services.open(tmp / "ws")
    model = tiny_model(tmp / "tiny")
    import_file(services.database, services.workspace, write_alpaca(tmp / "sums.json", n=16), name="sums")
    sup = Supervisor(services.database, services.workspace, tick=1.0)
    sup.start()
    waits, cpu = [], []
    try:
        for _ in range(args.repeat):
            cfg = RunConfig(dataset="sums", model=str(model), max_steps=3, batch_size=2, lora_rank=4)
            t0 = time.perf_counter()
            run_id = create_run(services.database, services.workspace, cfg).id
            while True:
                with services.database.session() as s:
                    if s.scalar(select(MetricPoint.id).where(MetricPoint.run_id == run_id).limit(1)):
                        break
                run = get_run(services.database, run_id)
                if run.status.finished:
                    raise SystemExit(f"run {run_id} ended {run.status.value} before a step: {run.reason}")
                time.sleep(0.05)
            waits.append(time.perf_counter() - t0)
            cpu.append(_cpu_seconds(get_run(services.database, run_id).pid))
            print(f"  run {run_id}: first loss point after {waits[-1]:.2f} s (worker CPU so far {cpu[-1]:.2f} s)")
            while not get_run(services.database, run_id).status.finished:
                time.sleep(0.2)
    finally:
        sup.stop()
    median = statistics.median(waits)
    print(f"submit -> first logged step: median {median:.2f} s of {len(waits)} (budget {BUDGET_S:.0f} s)")
    print(f"worker CPU time until then: median {statistics.median(cpu):.2f} s (less sensitive to a busy machine)")
    return 0 if median <= BUDGET_S else 1


if __name__ == "__main__":
    sys.exit(main())
