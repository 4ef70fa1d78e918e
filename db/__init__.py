"""Schema and sessions only: no business logic lives here."""

from db.models import Artifact, Base, Dataset, Download, EvalSample, Evaluation, MetricPoint, Run, RunStatus, Study
from db.session import Database, make_engine, migrate

__all__ = [
    "Artifact",
    "Base",
    "Database",
    "Dataset",
    "Download",
    "EvalSample",
    "Evaluation",
    "MetricPoint",
    "Run",
    "RunStatus",
    "Study",
    "make_engine",
    "migrate",
]
