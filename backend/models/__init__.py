"""Models a run can start from: bundled offline ones, torchvision architectures, local folders, hub ids.

- catalog.py    models per task, and how a model name becomes a checked local folder (resolve_model)
- hub.py        hub ids (org/name@revision) on the Hugging Face Hub, a mirror (HF_ENDPOINT) or ModelScope:
                what is on disk (cached_models), offline checks, deleting (delete_cached)
- downloads.py  downloads as jobs (the `downloads` table): queue, cancel, list; the supervisor advances them
- fetch.py      one download in its own process, with progress in the database
- fit.py        will it fit: peak memory of a run estimated before it is queued
"""

from backend.models.catalog import BUNDLED, chat_models, models_for, resolve_model
from backend.models.hub import HubRef, NotOnDisk, cached_models, parse_hub_id

__all__ = [
    "BUNDLED",
    "HubRef",
    "NotOnDisk",
    "cached_models",
    "chat_models",
    "models_for",
    "parse_hub_id",
    "resolve_model",
]
