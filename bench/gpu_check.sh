#!/usr/bin/env bash
# One GPU check, at most 10 minutes, for the day a CUDA machine is there (it has not run on a GPU yet):
#   bash bench/gpu_check.sh            # from the repository root, with .venv set up (make install)
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
import sys
from pathlib import Path

import torch
from transformers import AutoTokenizer, Qwen2Config, Qwen2ForCausalLM

from backend.models.catalog import resolve_model

ws = Path(sys.argv[1])
tokenizer = AutoTokenizer.from_pretrained(resolve_model("SmolLM2-135M-Instruct", ws / "models"))
config = Qwen2Config(  # Qwen2.5-0.5B's layers and widths; the bundled tokenizer's vocabulary
    vocab_size=len(tokenizer), hidden_size=896, intermediate_size=4864, num_hidden_layers=24,
    num_attention_heads=14, num_key_value_heads=2, max_position_embeddings=32768, tie_word_embeddings=True,
)
torch.manual_seed(0)
Qwen2ForCausalLM(config).save_pretrained(ws / "qwen-shape-0.5b")
tokenizer.save_pretrained(ws / "qwen-shape-0.5b")
print(f"0.5B-class model: {sum(p.numel() for p in Qwen2ForCausalLM(config).parameters()) / 1e9:.2f}B parameters")
PYEOF

cli datasets add examples/identity.json --name identity --json >/dev/null
report() {  # NAME, then the run settings: fit estimate, run, tokens/s and peak beside it
  local name=$1; shift
  local fit run
  fit=$(cli models fit --task sft "$@" --json)
  run=$(cli train --dataset identity "$@" --max-steps 30 --wait --json) || true
  "$PY" - "$name" "$fit" "$run" <<'PYEOF'
import json, sys
name, fit, run = sys.argv[1], json.loads(sys.argv[2]), json.loads(sys.argv[3])
m = run.get("metrics", {})
print(f"{name:28s} {run['status']:9s} tokens/s {m.get('tokens_per_second', '-'):>8}  "
      f"peak {m.get('peak_memory_mb', 0):8.0f} MB  estimate {fit['estimate_mb']:8.0f} MB  (run {run['id']})")
PYEOF
}
Q="$WS/qwen-shape-0.5b"
report "0.5B lora bf16" --model "$Q" --method lora --precision bf16 --batch-size 8 --cutoff-len 512
report "0.5B qlora 4-bit" --model "$Q" --method qlora --qlora-bits 4 --precision bf16 --batch-size 8 --cutoff-len 512
report "SmolLM2 full bf16" --model SmolLM2-135M-Instruct --method full --precision bf16 --batch-size 8 --cutoff-len 512
if [ "$(nvidia-smi -L | wc -l)" -ge 2 ]; then
  report "0.5B lora DDP x2" --model "$Q" --method lora --precision bf16 --batch-size 8 --cutoff-len 512 --devices cuda:0,1
else
  echo "DDP: skipped, fewer than 2 GPUs visible"
fi
full=$(cli runs list --json | "$PY" -c "import json,sys; print([r['id'] for r in json.load(sys.stdin) if r['method']=='full'][0])")
cli export "$full" --format gguf-q8_0 --json | "$PY" -c "import json,sys; d=json.load(sys.stdin); print('gguf-q8_0 export:', d['path'], d['verification'].get('ok'))"
echo "done in $SECONDS s (workspace $WS)"
