"""The main actions as JSON-shaped results: one definition shared by the CLI and the Gradio API.

Each takes the Services and plain values, and returns dicts/lists that serialize to JSON as they
are. User errors are ValueErrors naming the setting, row or id. One module per capability:
datasets.py, runs.py, search.py, export.py (and compress), playground.py, models.py; waiting.py
blocks until a job ends (`--wait`), supervising it when no app runs.

    from backend import actions
    actions.train(services, {"dataset": "identity", "max_steps": 2}, wait=True)
"""

from backend.actions.datasets import (
    add_dataset,
    add_datasets,
    delete_dataset,
    list_datasets,
    show_dataset,
)
from backend.actions.evaluate import (
    evaluate,
    evaluation_cancel,
    evaluation_list,
    evaluation_show,
    evaluation_summary,
)
from backend.actions.export import (
    compress,
    export,
)
from backend.actions.models import (
    models_cancel,
    models_downloads,
    models_fit,
    models_list,
    models_pull,
    models_rm,
)
from backend.actions.playground import (
    base_chat_models,
    chat,
    predict,
)
from backend.actions.runs import (
    cancel_run,
    compare_runs,
    delete_run,
    estimate,
    list_runs,
    resume_run,
    run_summary,
    set_priority,
    show_run,
    train,
    with_dataset_task,
)
from backend.actions.search import (
    list_searches,
    search,
    show_search,
    stop_search,
)

__all__ = [
    "evaluate",
    "evaluation_cancel",
    "evaluation_list",
    "evaluation_show",
    "evaluation_summary",
    "add_dataset",
    "add_datasets",
    "delete_dataset",
    "list_datasets",
    "show_dataset",
    "cancel_run",
    "compare_runs",
    "delete_run",
    "estimate",
    "list_runs",
    "resume_run",
    "run_summary",
    "set_priority",
    "show_run",
    "train",
    "with_dataset_task",
    "list_searches",
    "search",
    "show_search",
    "stop_search",
    "compress",
    "export",
    "base_chat_models",
    "chat",
    "predict",
    "models_cancel",
    "models_downloads",
    "models_fit",
    "models_list",
    "models_pull",
    "models_rm",
]
