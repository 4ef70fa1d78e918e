"""A LLaMA-Factory data folder as it is: `dataset_info.json` names every dataset and how to read it.

Each entry's `file_name` (a file or a folder of files, next to dataset_info.json), `formatting`
(alpaca, the default, or sharegpt), `columns` and `tags` are honoured. An alpaca entry that maps
only `prompt` is plain text for pre-training (LLaMA-Factory's c4_demo). `ranking: true` entries
are preference pairs and entries with a `kto_tag` column KTO rows (backend/data/preference.py).
Entries this importer cannot use (hub-only, multimodal, or a file missing from the folder)
are skipped with the reason; the import fails only when no entry is left.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from backend.data.errors import DataError
from backend.data.tables import is_data_file

INFO = "dataset_info.json"
ALPACA_COLUMNS = {"prompt": "instruction", "query": "input", "response": "output", "system": "system"}
ALPACA_COLUMNS |= {"history": "history", "tools": "tools"}
MEDIA = ("images", "videos", "audios")
# Ranking and KTO entries: LLaMA-Factory's column names -> backend/data/preference.py's
PREFERENCE_COLUMNS = {
    "alpaca": {"prompt": "instruction", "query": "input", "system": "system", "chosen": "chosen"},
    "sharegpt": {"messages": "conversations", "system": "system", "chosen": "chosen", "kto_tag": "label"},
}
PREFERENCE_COLUMNS["alpaca"] |= {"rejected": "rejected", "kto_tag": "label", "response": "completion"}
PREFERENCE_COLUMNS["sharegpt"] |= {"rejected": "rejected"}


@dataclass
class Entry:
    name: str
    files: list[Path]  # relative to the folder
    formatting: str  # alpaca, sharegpt, text, preference or kto
    columns: dict[str, str] = field(default_factory=dict)  # canonical converter field -> file column
    tags: dict[str, str] = field(default_factory=dict)


def read_info(root: Path) -> tuple[list[Entry], list[str]]:
    """(entries to import, "name: why it was skipped" lines)."""
    from backend.data.readers import decode

    path = root / INFO
    try:
        info = json.loads(decode(path))
    except json.JSONDecodeError as e:
        raise DataError(f"{INFO} line {e.lineno}: invalid JSON ({e.msg}); fix that line and retry") from None
    if not isinstance(info, dict) or not info:
        raise DataError(f'{INFO}: expected an object of dataset entries, e.g. {{"mydata": {{"file_name": "x.json"}}}}')
    entries, skipped = [], []
    for name, spec in info.items():
        at = f"{INFO} entry '{name}'"
        if not isinstance(spec, dict):
            raise DataError(f"{at}: expected an object with 'file_name', got {type(spec).__name__}")
        reason = _unsupported(spec) or _missing(root, spec)
        if reason:
            skipped.append(f"{name}: {reason}")
            continue
        entries.append(_entry(root, name, spec, at))
    if not entries:
        raise DataError(f"{INFO}: no entry can be imported ({'; '.join(skipped)})")
    return entries, skipped


def _unsupported(spec: dict[str, Any]) -> str:
    if "file_name" not in spec:
        hub = next((k for k in ("hf_hub_url", "ms_hub_url", "om_hub_url", "script_url") if k in spec), "")
        return f"it lives on a hub ({hub}); add it by hub id instead" if hub else "it has no 'file_name'"
    columns = spec.get("columns") or {}
    if any(m in columns for m in MEDIA):
        return "multimodal (image/video/audio) columns are not supported yet"
    return ""


def _missing(root: Path, spec: dict[str, Any]) -> str:
    """Why an entry's file cannot be read from this folder ("" when it can); files elsewhere are never read."""
    target = root / str(spec["file_name"])
    if not target.resolve().is_relative_to(root.resolve()):
        return f"file '{spec['file_name']}' is outside the folder; copy it next to {INFO}"
    if not target.exists():
        return f"file '{spec['file_name']}' is not in the folder; add it or fix file_name"
    return ""


def _entry(root: Path, name: str, spec: dict[str, Any], at: str) -> Entry:
    target = root / str(spec["file_name"])
    if target.is_dir():
        files = sorted(p.relative_to(root) for p in target.rglob("*") if is_data_file(p))
    else:
        files = [target.relative_to(root)]
    if not files:
        raise DataError(f"{at}: folder '{spec['file_name']}' holds no data files")
    formatting = spec.get("formatting", "alpaca")
    if formatting not in ("alpaca", "sharegpt"):
        raise DataError(f"{at}: formatting '{formatting}' is unknown; use alpaca or sharegpt")
    columns = spec.get("columns") or {}
    tags = spec.get("tags") or {}
    if not isinstance(columns, dict) or not isinstance(tags, dict):
        raise DataError(f"{at}: 'columns' and 'tags' must be objects")
    if spec.get("ranking") or "kto_tag" in columns:
        names = PREFERENCE_COLUMNS[formatting]
        mapped = {names[k]: v for k, v in columns.items() if k in names}
        return Entry(name, files, "preference" if spec.get("ranking") else "kto", mapped, tags)
    if formatting == "sharegpt":
        return Entry(
            name, files, "sharegpt", {k: v for k, v in columns.items() if k in ("messages", "system", "tools")}, tags
        )
    mapped = {ALPACA_COLUMNS[k]: v for k, v in columns.items() if k in ALPACA_COLUMNS}
    if "prompt" in columns and "response" not in columns and "messages" not in columns:
        return Entry(name, files, "text", {"text": columns["prompt"]})  # pre-training text
    return Entry(name, files, "alpaca", mapped)
