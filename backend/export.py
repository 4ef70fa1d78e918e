"""Export a completed run: the LoRA adapter, or the merged model as safetensors with its tokenizer.

Each export is loaded back and compared with the source on a fixed prompt (max abs logit
difference) before it is recorded, and zipped for download.

    python -m backend.cli export RUN_ID --format merged --json
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path
from typing import Any

from sqlalchemy import delete

from backend.runfiles import dir_size
from backend.workspace import Workspace
from db import Artifact, Database

log = logging.getLogger(__name__)

FORMATS = ("adapter", "merged")
CHECK_PROMPT = [{"role": "user", "content": "Who are you? 你是谁？"}]
MAX_LOGIT_DIFF = 1e-3  # fp32 save/load is exact; anything larger means a broken export
MARKER = ".tuneboard-export"  # only folders carrying it are replaced by a new export


def export_run(
    database: Database, workspace: Workspace, run_id: int, fmt: str, out: str | Path | None = None
) -> dict[str, Any]:
    from backend.inference import model_folder

    if fmt not in FORMATS:
        raise ValueError(f"format '{fmt}' is not supported; choose one of {', '.join(FORMATS)}")
    base, adapter, trusted = model_folder(database, workspace, run_id)
    if fmt == "adapter" and adapter is None:
        raise ValueError(f"run {run_id} trained all weights, so it has no adapter; export 'merged' instead")
    target = _target(workspace, run_id, fmt, out)

    if fmt == "adapter":
        shutil.copytree(adapter, target, dirs_exist_ok=True)
        verification = _verify_adapter(base, adapter, target, trusted)
    else:
        verification = _write_merged(base, adapter, target, trusted)
    (target / MARKER).write_text(f"{fmt} export of run {run_id}\n")
    archive = Path(shutil.make_archive(str(target), "zip", root_dir=target))
    size = dir_size(target)
    with database.session() as s:  # a re-export replaces the record of the folder it replaced
        s.execute(delete(Artifact).where(Artifact.run_id == run_id, Artifact.path == str(target)))
        art = Artifact(run_id=run_id, kind=fmt, path=str(target), size_bytes=size, verification=verification)
        s.add(art)
    return {
        "id": art.id,
        "run_id": run_id,
        "format": fmt,
        "path": str(target),
        "zip": str(archive),
        "size_bytes": size,
        "verification": verification,
    }


def _target(workspace: Workspace, run_id: int, fmt: str, out: str | Path | None) -> Path:
    """The export folder: new, empty, or an earlier Tuneboard export (replaced). Never anything else."""
    target = Path(out).expanduser().resolve() if out else workspace.export_dir(run_id) / fmt
    if target.exists() and not target.is_dir():
        raise ValueError(f"--out {target} is a file; name a new or empty folder")
    if target.is_relative_to(workspace.root / "runs") or target.is_relative_to(workspace.root / "datasets"):
        raise ValueError(f"--out {target} is inside the workspace's runs or datasets; name another folder")
    if target.is_dir() and any(target.iterdir()):
        if not (target / MARKER).is_file():
            raise ValueError(f"--out {target} is not empty; name a new or empty folder")
        shutil.rmtree(target)
    target.mkdir(parents=True, exist_ok=True)
    return target


def _write_merged(base: Path, adapter: Path | None, target: Path, code: bool) -> dict[str, Any]:
    """`code`: the run's trust_remote_code choice."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(base, trust_remote_code=code)
    if adapter is not None:
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, adapter).merge_and_unload()
    tokenizer = AutoTokenizer.from_pretrained(adapter or base, trust_remote_code=code)
    model.save_pretrained(target, safe_serialization=True)
    tokenizer.save_pretrained(target)  # keeps the chat template, so the export chats like the playground
    reloaded = AutoModelForCausalLM.from_pretrained(target, trust_remote_code=code)
    return _compare(model, reloaded, tokenizer)


def _verify_adapter(base: Path, adapter: Path, target: Path, code: bool) -> dict[str, Any]:
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(adapter, trust_remote_code=code)
    source = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(base, trust_remote_code=code), adapter)
    exported = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(base, trust_remote_code=code), target)
    return _compare(source, exported, tokenizer)


def _compare(source: Any, exported: Any, tokenizer: Any) -> dict[str, Any]:
    import torch

    ids = tokenizer.apply_chat_template(CHECK_PROMPT, add_generation_prompt=True, return_tensors="pt", return_dict=True)
    with torch.no_grad():
        a = source.eval()(**ids).logits
        b = exported.eval()(**ids).logits
    diff = float((a - b).abs().max())
    if diff > MAX_LOGIT_DIFF:
        raise ValueError(f"export check failed: logits differ by {diff:.2e} from the source model")
    return {"max_abs_logit_diff": diff, "same_greedy_token": bool((a.argmax(-1) == b.argmax(-1)).all()), "ok": True}
