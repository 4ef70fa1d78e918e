"""How much a CPU run slows down when something else computes on the same cores, without and with backend.cpu.

    .venv/bin/python bench/cpu_sharing.py                    # bundled SmolLM2-135M-Instruct, ~3-5 min on 2 cores
    .venv/bin/python bench/cpu_sharing.py --steps 5 --batch 2 --seq 64 --modes new

A "run" is a process doing LoRA r8 (all linear layers) steps of the bundled model in fp32, as a
worker does (forward, backward, AdamW). Three scenarios, each in two modes:

- alone: one run;
- with a chat: the same run while another process answers in a loop through the Playground's own
  `stream_chat` (as the app does while someone chats);
- two runs: two equal runs at once (`--cpu-runs 2`).

old = no budget: no OMP_* variables, TUNEBOARD_CPU_SHARING=0 (what every process did before).
new = Tuneboard's policy: the supervisor's worker environment (threads, OMP_WAIT_POLICY=PASSIVE) and
the lease it takes for the worker; the run follows its share each step; the chat process holds a
lease while it answers, as in the app. Each run first loads and takes one warm-up step, then all
start timing together. Prints one JSON line: steps/s per scenario and the slowdown against alone.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
MODEL = "SmolLM2-135M-Instruct"
OLD_KNOBS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OMP_WAIT_POLICY", "TUNEBOARD_CPU_THREADS")


def model_dir() -> str:
    from backend.models.catalog import resolve_model

    return str(resolve_model(MODEL, Path(os.environ.get("TUNEBOARD_MODELS_DIR", ROOT / "workspace" / "models")), False))


# -- the processes ---------------------------------------------------------------------------------


def train_role(args: argparse.Namespace) -> None:
    """Load, one warm-up step, say 'ready', wait for the go file, time `--steps` steps."""
    from backend import cpu

    cpu.wait_politely()
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_pretrained(args.model, dtype=torch.float32)
    model = get_peft_model(model, LoraConfig(r=8, lora_alpha=16, target_modules="all-linear"))
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
    seeded = torch.Generator().manual_seed(0)
    batch = torch.randint(0, model.config.vocab_size, (args.batch, args.seq), generator=seeded)

    def step() -> None:
        model(input_ids=batch, labels=batch).loss.backward()
        opt.step()
        opt.zero_grad()

    with cpu.lease(cpu.RUN) as held:
        step()
        print("ready", flush=True)
        while not Path(args.go).exists():
            time.sleep(0.05)
        threads, t0 = [], time.perf_counter()
        for _ in range(args.steps):
            threads.append(held.follow())  # what the worker's ThreadShare callback does before each step
            step()
        seconds = time.perf_counter() - t0
    print(json.dumps({"steps_per_s": args.steps / seconds, "threads": threads}), flush=True)


def chat_role(args: argparse.Namespace) -> None:
    """Answer the same question through the Playground's stream_chat until killed."""
    from backend import cpu

    cpu.wait_politely()  # as app.py does before torch is imported
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from backend.config import GenerationConfig
    from backend.playground.chat import stream_chat

    tokenizer = AutoTokenizer.from_pretrained(args.model)
    model = AutoModelForCausalLM.from_pretrained(args.model, dtype=torch.float32).eval()
    gen = GenerationConfig(max_new_tokens=32, temperature=0.0)
    print("ready", flush=True)
    while True:
        for _ in stream_chat(model, tokenizer, [{"role": "user", "content": "Tell me about the sea."}], gen):
            pass


# -- the scenarios ---------------------------------------------------------------------------------


def _env(mode: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in OLD_KNOBS}
    env["TUNEBOARD_CPU_SHARING"] = "0" if mode == "old" else "1"
    return env


def _start(role: str, mode: str, args: argparse.Namespace, go: Path) -> subprocess.Popen:
    from backend import cpu

    env = _env(mode)
    if role == "train" and mode == "new":  # what the supervisor does for a CPU worker
        saved = dict(os.environ)
        os.environ.clear()
        os.environ.update(env)
        env.update(cpu.worker_env(1))
        os.environ.clear()
        os.environ.update(saved)
    cmd = [sys.executable, __file__, "--role", role, "--go", str(go), "--model", args.model]
    cmd += ["--steps", str(args.steps), "--batch", str(args.batch), "--seq", str(args.seq)]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, cwd=ROOT)
    if role == "train" and mode == "new":
        cpu.lease_for(proc.pid)
    return proc


def scenario(name: str, mode: str, args: argparse.Namespace) -> list[float]:
    """Steps/s of each run in the scenario."""
    go = Path(tempfile.mkdtemp()) / "go"
    chat = _start("chat", mode, args, go) if name == "with_chat" else None
    if chat:
        assert chat.stdout.readline().strip() == "ready"
    runs = [_start("train", mode, args, go) for _ in range(2 if name == "two_runs" else 1)]
    for run in runs:
        assert run.stdout.readline().strip() == "ready", f"{name}/{mode}: a run did not start"
    go.touch()
    results = [json.loads(run.stdout.readline()) for run in runs]
    for run in runs:
        run.wait()
    if chat:
        chat.kill()
        chat.wait()
    print(f"{name:9s} {mode}: {results}", file=sys.stderr, flush=True)
    return [round(r["steps_per_s"], 4) for r in results]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--role", choices=["bench", "train", "chat"], default="bench")
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--batch", type=int, default=2)
    p.add_argument("--seq", type=int, default=64)
    p.add_argument("--modes", default="old,new", help="old, new or both (old is slow on a loaded machine)")
    p.add_argument("--go", default="")
    p.add_argument("--model", default="")
    args = p.parse_args()
    if args.role != "bench":
        (train_role if args.role == "train" else chat_role)(args)
        return
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ["TUNEBOARD_CPU_LEASES"] = tempfile.mkdtemp(prefix="leases-")  # this benchmark's own
    args.model = args.model or model_dir()
    t0, load_before = time.monotonic(), os.getloadavg()
    out: dict[str, object] = {"model": MODEL, "cores": len(os.sched_getaffinity(0)), "steps": args.steps}
    out["shape"] = [args.batch, args.seq]
    for mode in args.modes.split(","):
        alone = scenario("alone", mode, args)[0]
        chat = scenario("with_chat", mode, args)[0]
        two = scenario("two_runs", mode, args)
        out[mode] = {
            "alone_steps_per_s": alone,
            "with_chat_steps_per_s": chat,
            "two_runs_steps_per_s": two,
            "slowdown_with_chat": round(alone / chat, 2),
            "slowdown_two_runs": [round(alone / r, 2) for r in two],
        }
    out["load_before"] = [round(x, 2) for x in load_before]
    out["load_after"] = [round(x, 2) for x in os.getloadavg()]
    out["seconds"] = round(time.monotonic() - t0, 1)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
