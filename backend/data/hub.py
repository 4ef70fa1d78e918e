"""A Hugging Face hub dataset id (with subset and split) -> records per split, when the machine is online."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

from backend.data.errors import DataError
from backend.data.options import SPLIT_ALIASES

HUB_PREFIXES = ("hf://", "hub:", "hf:")


def is_hub_id(value: str) -> bool:
    """owner/name (or hub:owner/name); a path that exists is never a hub id."""
    bare = strip(value)
    parts = bare.split("/")
    return value.startswith(HUB_PREFIXES) or (len(parts) == 2 and all(p and not p.startswith(".") for p in parts))


def strip(value: str) -> str:
    for prefix in HUB_PREFIXES:
        value = value.removeprefix(prefix)
    return value.removeprefix("datasets/").strip("/")


def load(dataset_id: str, subset: str = "", split: str = "") -> dict[str, Iterator[tuple[int, Any]]]:
    """{split: (row, record) iterator} from the hub; a clear DataError when offline or not found."""
    repo = strip(dataset_id)
    if os.environ.get("HF_HUB_OFFLINE") == "1" or os.environ.get("HF_DATASETS_OFFLINE") == "1":
        raise DataError(
            f"'{repo}' looks like a Hugging Face hub dataset, but this machine is offline (HF_HUB_OFFLINE=1); "
            "download its files elsewhere and add them as a file, folder or zip"
        )
    if not _reachable():
        raise DataError(
            f"'{repo}' looks like a Hugging Face hub dataset, but the hub cannot be reached from this machine "
            "(offline?); download its files elsewhere and add them as a file, folder or zip"
        )
    import datasets

    try:
        loaded = datasets.load_dataset(repo, subset or None, split=split or None)
    except Exception as e:  # the hub raises many types: connection, not found, gated, bad config
        first = str(e).splitlines()[0][:200] if str(e) else type(e).__name__
        raise DataError(
            f"could not load '{repo}' from the Hugging Face hub ({first}); check the id, subset and split, "
            "the network, or add the files as a path"
        ) from None
    parts = {"train": loaded} if split else dict(loaded)  # one chosen split is what trains
    out = {}
    for name, part in parts.items():
        canonical = SPLIT_ALIASES.get(name.lower())
        if canonical is None:
            continue
        out[canonical] = _rows(part)
    if "train" not in out:
        raise DataError(f"'{repo}' has no train split (it has {', '.join(parts)}); choose one with --split")
    return out


def _reachable(timeout: float = 3.0) -> bool:
    """A quick TCP check of the hub, so an offline machine gets its answer in seconds, not after retries."""
    import socket
    from urllib.parse import urlparse

    if any(os.environ.get(k) for k in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY")):
        return True  # only the proxy knows; let the download try
    url = urlparse(os.environ.get("HF_ENDPOINT", "https://huggingface.co"))
    try:
        socket.create_connection((url.hostname, url.port or 443), timeout=timeout).close()
    except OSError:
        return False
    return True


def _rows(part: Any) -> Iterator[tuple[int, Any]]:
    names = {k: f.names for k, f in part.features.items() if hasattr(f, "names")}  # ClassLabel -> class names
    for i, record in enumerate(part, start=1):
        for column, labels in names.items():
            if isinstance(record.get(column), int) and 0 <= record[column] < len(labels):
                record[column] = labels[record[column]]
        yield i, record
