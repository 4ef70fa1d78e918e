"""Datasets: read, validate, convert to the canonical schema, store, preview."""

from backend.data.importer import FORMATS, import_file, load_rows
from backend.data.preview import flatten, preview
from backend.data.readers import DataError
from backend.data.store import dataset_summary, find_dataset, list_datasets

__all__ = [
    "FORMATS",
    "DataError",
    "dataset_summary",
    "find_dataset",
    "flatten",
    "import_file",
    "list_datasets",
    "load_rows",
    "preview",
]
