"""ImportOptions: how one import reads, maps and splits its input; ImportLimits: what it refuses.

The UI, the CLI and the API build an ImportOptions, so import defaults live here and nowhere else.
Limits can be raised per deployment with environment variables (e.g. TUNEBOARD_MAX_UPLOAD_MB=8192).

    opts = ImportOptions(format="classification", text_column="review", label_column="stars")
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, get_args

from backend.data.errors import DataError

Format = Literal[
    "auto", "alpaca", "sharegpt", "messages", "text", "classification", "imagefolder", "llamafactory",
    "preference", "kto", "prompts",
]  # fmt: skip
FORMATS: tuple[str, ...] = get_args(Format)
TASKS = ("sft", "text-classification", "image-classification", "preference", "kto", "prompts")
CLASSIFIER_TASKS = ("text-classification", "image-classification")  # labelled rows: stratified splits
SPLITS = ("train", "validation", "test")
# Folder and file stems that name a split, as people and the Hugging Face hub spell them.
SPLIT_ALIASES = {"train": "train", "training": "train", "validation": "validation", "valid": "validation"}
SPLIT_ALIASES |= {"val": "validation", "dev": "validation", "eval": "validation", "test": "test", "testing": "test"}
CLASSIFICATION_SPLIT = (0.1, 0.1)  # validation, test shares when the files give no split


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    if not raw.isdigit():
        raise DataError(f"environment variable {name}={raw!r} must be a whole number")
    return int(raw)


@dataclass(frozen=True)
class ImportLimits:
    """Sizes past which input is refused before it can exhaust memory or disk."""

    max_upload_bytes: int = field(default_factory=lambda: _env_int("TUNEBOARD_MAX_UPLOAD_MB", 2048) * 1024**2)
    max_row_chars: int = field(default_factory=lambda: _env_int("TUNEBOARD_MAX_ROW_CHARS", 500_000))  # ~4x 32k tokens
    max_unzipped_bytes: int = field(default_factory=lambda: _env_int("TUNEBOARD_MAX_UNZIPPED_MB", 8192) * 1024**2)
    max_zip_ratio: int = 200  # compression ratio of one entry; real images and text stay far below
    max_zip_entries: int = 200_000
    max_image_pixels: int = 89_478_485  # PIL's own decompression-bomb threshold


@dataclass
class ImportOptions:
    """What a person can choose at import; every field has a working default ("" = detect)."""

    format: str = "auto"
    task: str = ""  # "" = what the format implies
    text_column: str = ""
    label_column: str = ""
    text_pair_column: str = ""
    file_column: str = ""  # image zips with a CSV of file name and label
    val_ratio: float | None = None  # None: 0 for sft, 0.1 for classification
    test_ratio: float | None = None
    seed: int = 42
    drop_duplicates: bool = False
    skip_invalid: bool = False  # leave out rows with problems (each listed) instead of refusing the upload
    subset: str = ""  # hub datasets only
    split: str = ""  # hub datasets only: one split instead of all
    limits: ImportLimits = field(default_factory=ImportLimits)

    def __post_init__(self) -> None:
        if self.format not in FORMATS:
            raise DataError(f"format '{self.format}' is not supported; choose one of {', '.join(FORMATS)}")
        if self.task and self.task not in TASKS:
            raise DataError(f"task '{self.task}' is not supported; choose one of {', '.join(TASKS)}")
        for name in ("val_ratio", "test_ratio"):
            value = getattr(self, name)
            if value is not None and not 0 <= value < 0.9:
                raise DataError(f"setting '{name}' must be between 0 and 0.9, got {value}")
        if (self.val_ratio or 0) + (self.test_ratio or 0) >= 0.9:
            raise DataError("val_ratio + test_ratio must stay below 0.9 so that training keeps some rows")

    def ratios(self, task: str) -> tuple[float, float]:
        """(validation, test) shares for a task: classification holds out 10% + 10% unless told otherwise."""
        default = CLASSIFICATION_SPLIT if task in CLASSIFIER_TASKS else (0.0, 0.0)
        val = default[0] if self.val_ratio is None else self.val_ratio
        test = default[1] if self.test_ratio is None else self.test_ratio
        return val, test


def data_roots(workspace_root: Path) -> list[Path]:
    """Folders the web app may import server-side paths from: $TUNEBOARD_DATA_ROOTS, else its working folder
    and the workspace. (The CLI reads any path its user can; a browser user names paths on someone else's disk.)"""
    raw = os.environ.get("TUNEBOARD_DATA_ROOTS", "")
    roots = [Path(p) for p in raw.split(os.pathsep) if p.strip()] or [Path.cwd(), workspace_root]
    return [r.expanduser().resolve() for r in roots]


def check_server_path(path: str, workspace_root: Path) -> None:
    """Refuse a server-side path outside the data roots (symlinks resolved first)."""
    target = Path(path).expanduser().resolve()
    roots = data_roots(workspace_root)
    if not any(target.is_relative_to(r) for r in roots):
        shown = os.pathsep.join(map(str, roots))
        raise DataError(
            f"{path}: the app may only read paths under {shown}; upload the file instead, or start the app "
            "with TUNEBOARD_DATA_ROOTS set to the folders it may read"
        )
