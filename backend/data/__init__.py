"""Datasets: detect the format, validate every row, convert to one canonical schema per task, store, preview.

from backend.data import ImportOptions, import_path
results = import_path(database, workspace, "reviews.csv", options=ImportOptions(label_column="stars"))
"""

from backend.data.errors import DataError
from backend.data.importer import Imported, import_file, import_path, load_rows
from backend.data.options import FORMATS, SPLITS, TASKS, ImportLimits, ImportOptions
from backend.data.preview import flatten, page, preview
from backend.data.store import dataset_summary, delete_dataset, find_dataset, list_datasets

__all__ = [
    "FORMATS",
    "SPLITS",
    "TASKS",
    "DataError",
    "ImportLimits",
    "ImportOptions",
    "Imported",
    "dataset_summary",
    "delete_dataset",
    "find_dataset",
    "flatten",
    "import_file",
    "import_path",
    "list_datasets",
    "load_rows",
    "page",
    "preview",
]
