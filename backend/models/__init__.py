"""Models a run can start from: the bundled offline ones, torchvision architectures, local folders.

- catalog.py  models per task, and how a model name becomes a checked local folder (resolve_model)
"""

from backend.models.catalog import BUNDLED, models_for, resolve_model

__all__ = ["BUNDLED", "models_for", "resolve_model"]
