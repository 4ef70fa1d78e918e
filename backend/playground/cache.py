"""Models the playground has loaded, kept up to a memory bound; the least recently used go first.

    from backend.playground.cache import CACHE
    model, tokenizer = CACHE.get("run:3", "#3 tuna", lambda: load_it())   # loads once, then a lookup
    CACHE.usage()        # {"limit_bytes": ..., "used_bytes": ..., "models": [...]} oldest first
    CACHE.unload()       # everything (or CACHE.unload("run:3"))

A model's size is what its parameters and buffers take in memory. The bound applies to what stays
loaded: a new model is counted once it is loaded, then the least recently used others are unloaded
until the total fits (the newest always stays, even alone over the bound, or nothing could be used).
The bound is MODEL_CACHE_MB in backend/config.py, or $TUNEBOARD_MODEL_CACHE_MB.
"""

from __future__ import annotations

import gc
import logging
import os
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from backend.config import MODEL_CACHE_MB

log = logging.getLogger(__name__)

ENV_LIMIT = "TUNEBOARD_MODEL_CACHE_MB"


@dataclass
class _Entry:
    value: Any
    label: str
    size: int


def model_bytes(model: Any) -> int:
    """Bytes of a torch module's parameters and buffers (shared tensors counted once); 0 for anything else."""
    seen: set[int] = set()
    total = 0
    for get in ("parameters", "buffers"):
        for t in getattr(model, get, lambda: [])():
            if t.data_ptr() in seen:
                continue
            seen.add(t.data_ptr())
            total += t.numel() * t.element_size()
    return total


def limit_from_env() -> int:
    """The bound in bytes: $TUNEBOARD_MODEL_CACHE_MB, else MODEL_CACHE_MB."""
    raw = os.environ.get(ENV_LIMIT, "").strip()
    if not raw:
        return MODEL_CACHE_MB * 1024**2
    try:
        mb = float(raw)
    except ValueError:
        raise ValueError(f"${ENV_LIMIT}={raw!r} is not a number of megabytes; e.g. {ENV_LIMIT}=2048") from None
    if mb <= 0:
        raise ValueError(f"${ENV_LIMIT} must be above 0 MB, not {raw}")
    return int(mb * 1024**2)


class ModelCache:
    """Loaded models by key, least recently used first, within `limit_bytes` (see the module docstring)."""

    def __init__(self, limit_bytes: int | None = None):
        self._limit = limit_bytes  # None: read $TUNEBOARD_MODEL_CACHE_MB (or the default) when needed
        self._entries: OrderedDict[str, _Entry] = OrderedDict()
        self._lock = threading.RLock()  # one load at a time: two cores, and no model loaded twice

    def get(self, key: str, label: str, loader: Callable[[], Any], size_of: Callable[[Any], int] | None = None) -> Any:
        """The cached value for `key`, else `loader()`'s (sized by `size_of`, default: its first item's tensors)."""
        with self._lock:
            if key in self._entries:
                self._entries.move_to_end(key)
                return self._entries[key].value
            limit = self.limit_bytes  # a bad $TUNEBOARD_MODEL_CACHE_MB is refused before a load, not after
            value = loader()
            size = (size_of or _first_model_bytes)(value)
            self._entries[key] = _Entry(value, label, size)
            self._evict(key, limit)
            log.info("loaded %s (%.0f MB); %.0f MB in use", label, size / 1024**2, self.used_bytes / 1024**2)
            return value

    def _evict(self, keep: str, limit: int) -> None:
        while self.used_bytes > limit and len(self._entries) > 1:
            oldest = next(k for k in self._entries if k != keep)
            entry = self._entries.pop(oldest)
            log.info("unloaded %s (least recently used; bound %.0f MB)", entry.label, limit / 1024**2)
        gc.collect()

    def unload(self, key: str | None = None) -> list[str]:
        """Drop one model (or all); returns the labels of those unloaded."""
        with self._lock:
            keys = [key] if key is not None else list(self._entries)
            gone = [self._entries.pop(k).label for k in keys if k in self._entries]
        gc.collect()
        return gone

    def keys(self) -> list[str]:
        """Keys, least recently used first."""
        return list(self._entries)

    @property
    def limit_bytes(self) -> int:
        return self._limit if self._limit is not None else limit_from_env()

    @property
    def used_bytes(self) -> int:
        return sum(e.size for e in self._entries.values())

    def usage(self) -> dict[str, Any]:
        """What is loaded (oldest first), the bytes it takes, the bound, and the process's resident memory."""
        with self._lock:
            models = [{"key": k, "label": e.label, "bytes": e.size} for k, e in self._entries.items()]
        return {
            "limit_bytes": self.limit_bytes,
            "used_bytes": sum(m["bytes"] for m in models),
            "process_rss_bytes": process_rss(),
            "models": models,
        }


def process_rss() -> int | None:
    """This process's resident memory in bytes (Linux /proc), or None where it cannot be read."""
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return pages * os.sysconf("SC_PAGE_SIZE")


def _first_model_bytes(value: Any) -> int:
    return model_bytes(value[0] if isinstance(value, tuple) else value)


CACHE = ModelCache()  # the app's and the CLI's one cache: chat, side by side and classifiers share the bound
