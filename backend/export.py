"""Export a completed run: the LoRA adapter, or the merged model as safetensors with its tokenizer.

Chat models, text classifiers (a folder `AutoModelForSequenceClassification` loads) and image
classifiers (safetensors + config.json, LoRA already merged in) alike: each export is loaded back and
compared with the source on a fixed input (max abs logit difference) before it is recorded, and
zipped for download. A failed export leaves no folder behind.

    python -m backend.cli export RUN_ID --format merged --json
"""

from __future__ import annotations

import json
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
CHECK_TEXT = "The parcel arrived late and the box was damaged. 包裹晚到了。"  # what a text classifier is checked on
CLASSES_FILE = "classes.json"  # beside a text classifier's adapter: its class names in id order
MAX_LOGIT_DIFF = 1e-3  # fp32 save/load is exact; anything larger means a broken export
MARKER = ".tuneboard-export"  # only folders carrying it are replaced by a new export


def export_run(
    database: Database, workspace: Workspace, run_id: int, fmt: str, out: str | Path | None = None
) -> dict[str, Any]:
    from backend.inference import model_folder

    if fmt not in FORMATS:
        raise ValueError(f"format '{fmt}' is not supported; choose one of {', '.join(FORMATS)}")
    from backend.runs import get_run

    task = (get_run(database, run_id).config or {}).get("task", "sft")
    base, adapter, trusted = model_folder(database, workspace, run_id)
    if fmt == "adapter" and (adapter is None or task == "image-classification"):
        why = "its LoRA is merged into the saved network" if adapter else "it trained all weights"
        raise ValueError(f"run {run_id} has no separate adapter ({why}); export 'merged' instead")
    target = _target(workspace, run_id, fmt, out)
    try:
        if task == "image-classification":
            verification = _write_image_classifier(adapter or base, target)
        elif task == "text-classification":
            verification = _write_text_classifier(base, adapter, target, trusted, fmt)
        elif fmt == "adapter":
            shutil.copytree(adapter, target, dirs_exist_ok=True)
            verification = _verify_adapter(base, adapter, target, trusted)
        else:
            verification = _write_merged(base, adapter, target, trusted)
    except Exception:  # no half-written export to trip over (or to refuse next time), nor a record of the old one
        shutil.rmtree(target, ignore_errors=True)
        Path(f"{target}.zip").unlink(missing_ok=True)
        with database.session() as s:
            s.execute(delete(Artifact).where(Artifact.run_id == run_id, Artifact.path == str(target)))
        raise
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
    return _compare(model, reloaded, _chat_input(tokenizer))


def _verify_adapter(base: Path, adapter: Path, target: Path, code: bool) -> dict[str, Any]:
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(adapter, trust_remote_code=code)
    source = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(base, trust_remote_code=code), adapter)
    exported = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(base, trust_remote_code=code), target)
    return _compare(source, exported, _chat_input(tokenizer))


def _write_text_classifier(base: Path, adapter: Path | None, target: Path, code: bool, fmt: str) -> dict[str, Any]:
    """A sequence classifier: the adapter (with its head), or one folder with the adapter merged in."""
    from transformers import AutoModelForSequenceClassification

    from backend.tasks.text_classification import load_tokenizer

    tokenizer = load_tokenizer(adapter or base, code)  # with the pad token training gave it

    def load(adapter_dir: Path | None) -> Any:
        if adapter_dir is None:
            return AutoModelForSequenceClassification.from_pretrained(base, trust_remote_code=code)
        from peft import PeftModel

        if not (adapter_dir / CLASSES_FILE).is_file():
            raise ValueError(f"{adapter_dir} has no {CLASSES_FILE} (it predates class lists); train the run again")
        classes = json.loads((adapter_dir / CLASSES_FILE).read_text())  # the base folder's head has other classes
        model = AutoModelForSequenceClassification.from_pretrained(
            base,
            num_labels=len(classes),
            id2label=dict(enumerate(classes)),
            label2id={c: i for i, c in enumerate(classes)},
            ignore_mismatched_sizes=True,
            trust_remote_code=code,
        )
        if model.config.pad_token_id is None:  # as training set it: batches of several rows need it
            model.config.pad_token_id = tokenizer.pad_token_id
        return PeftModel.from_pretrained(model, adapter_dir)

    source = load(adapter)
    if fmt == "adapter":
        shutil.copytree(adapter, target, dirs_exist_ok=True)
        exported = load(target)
    else:
        source = source.merge_and_unload() if adapter is not None else source
        source.save_pretrained(target, safe_serialization=True)
        tokenizer.save_pretrained(target)
        exported = AutoModelForSequenceClassification.from_pretrained(target, trust_remote_code=code)
    return _compare(source, exported, dict(tokenizer(CHECK_TEXT, return_tensors="pt")))


def _write_image_classifier(folder: Path, target: Path) -> dict[str, Any]:
    """The saved network (weights with any LoRA merged in, plus config.json), copied and reloaded."""
    import torch

    from backend.tasks import image_classification as ic

    shutil.copytree(folder, target, dirs_exist_ok=True)
    source, spec = ic.load_model(folder)
    exported, _ = ic.load_model(target)
    pixels = torch.randn(1, 3, spec["image_size"], spec["image_size"], generator=torch.Generator().manual_seed(0))
    return _compare(source, exported, {"pixel_values": pixels})


def _chat_input(tokenizer: Any) -> dict[str, Any]:
    return tokenizer.apply_chat_template(
        CHECK_PROMPT, add_generation_prompt=True, return_tensors="pt", return_dict=True
    )


def _compare(source: Any, exported: Any, inputs: dict[str, Any]) -> dict[str, Any]:
    import torch

    with torch.no_grad():
        a = source.eval()(**inputs).logits
        b = exported.eval()(**inputs).logits
    diff = float((a - b).abs().max())
    if diff > MAX_LOGIT_DIFF:
        raise ValueError(f"export check failed: logits differ by {diff:.2e} from the source model")
    return {"max_abs_logit_diff": diff, "same_greedy_token": bool((a.argmax(-1) == b.argmax(-1)).all()), "ok": True}
