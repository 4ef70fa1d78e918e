"""From submit to the first logged training step: how long a person waits to see a curve.

    .venv/bin/python bench/runs_first_step.py [--repeat 3]                     # a tiny 2-layer Llama
    .venv/bin/python bench/runs_first_step.py --bundled --modes cold,spare     # the quick start's model and data

A supervisor runs as in the app (a thread, 1 s tick). Each round queues a LoRA run and times until
its worker has written its first loss point. `cold`: every worker is a fresh `python -m
backend.runs.worker` process (imports, database, dataset, model, Trainer); `spare`: the app's default,
the run is handed to a spare worker whose imports were done before (backend/runs/spare.py), and each
round waits for the next spare, as a person who submits a run into an idle app would find it.
With `--bundled`: SmolLM2-135M-Instruct on examples/identity.json, 3 steps (a first run
materializes the model and is not counted), and the worker's own figures after each run: start-up
(claim to training), the adapter saved after the last step, and the checks after training.
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
    p.add_argument("--bundled", action="store_true", help="SmolLM2-135M-Instruct on the identity example")
    p.add_argument("--modes", default="spare", help="comma-separated: cold, spare")
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
    if args.bundled:
        model, data = "SmolLM2-135M-Instruct", Path(__file__).resolve().parent.parent / "examples" / "identity.json"
    else:
        model, data = str(tiny_model(tmp / "tiny")), write_alpaca(tmp / "sums.json", n=16)
    import_file(services.database, services.workspace, data, name="data")

    def config() -> RunConfig:
        if args.bundled:  # the quick start's defaults, 3 steps
            return RunConfig(dataset="data", model=model, max_steps=3)
        return RunConfig(dataset="data", model=model, max_steps=3, batch_size=2, lora_rank=4)

    def first_point(run_id: int) -> None:
        while True:
            with services.database.session() as s:
                if s.scalar(select(MetricPoint.id).where(MetricPoint.run_id == run_id).limit(1)):
                    return
            run = get_run(services.database, run_id)
            if run.status.finished:
                raise SystemExit(f"run {run_id} ended {run.status.value} before a step: {run.reason}")
            time.sleep(0.05)

    def finished(run_id: int) -> dict:
        while not (run := get_run(services.database, run_id)).status.finished:
            time.sleep(0.2)
        return run.metrics or {}

    if args.bundled:  # materialize the bundled model once, outside the timed rounds
        Supervisor(services.database, services.workspace).run_until(
            create_run(services.database, services.workspace, config()).id
        )
    ok = True
    for mode in args.modes.split(","):
        os.environ["TUNEBOARD_SPARE_WORKER"] = "1" if mode == "spare" else "0"
        sup = Supervisor(services.database, services.workspace, tick=1.0)
        sup.start()
        waits, cpu, after = [], [], []
        try:
            for _ in range(args.repeat):
                if mode == "spare":
                    _wait_ready(services.workspace.root, sup)
                t0 = time.perf_counter()
                run_id = create_run(services.database, services.workspace, config()).id
                first_point(run_id)
                waits.append(time.perf_counter() - t0)
                cpu.append(_cpu_seconds(get_run(services.database, run_id).pid))
                metrics = finished(run_id)
                after.append(metrics)
                print(
                    f"  {mode} run {run_id}: first loss point after {waits[-1]:.2f} s"
                    f" (worker CPU so far {cpu[-1]:.2f} s);"
                    f" start-up {metrics.get('startup_seconds')} s, saved {metrics.get('save_seconds')} s after the"
                    f" last step, checks {metrics.get('checks_seconds')} s"
                )
        finally:
            sup.stop()
        median = statistics.median(waits)
        print(f"{mode}: submit -> first logged step: median {median:.2f} s of {len(waits)} (budget {BUDGET_S:.0f} s)")
        print(f"{mode}: worker CPU time until then: median {statistics.median(cpu):.2f} s")
        for key in ("startup_seconds", "save_seconds", "checks_seconds"):
            values = [m[key] for m in after if m.get(key) is not None]
            if values:
                print(f"{mode}: {key} median {statistics.median(values)}")
        ok = ok and median <= BUDGET_S
    return 0 if ok else 1


def _wait_ready(root: Path, sup) -> None:
    """Until the supervisor's spare worker has done its imports (its log's ready line)."""
    from backend.runs.spare import LOG_FILE, READY

    while not (sup._spare and sup._spare.alive() and READY in _read(root / LOG_FILE)):
        time.sleep(0.2)


def _read(path: Path) -> str:
    return path.read_text(errors="replace") if path.is_file() else ""


if __name__ == "__main__":
    sys.exit(main())
