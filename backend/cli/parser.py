"""The CLI's commands and options; every RunConfig field is an option of `train` and `search`."""

from __future__ import annotations

import argparse
from dataclasses import fields
from typing import Any

from backend.cli.commands import (
    auth_add,
    chat,
    compress,
    datasets_add,
    datasets_delete,
    datasets_list,
    datasets_show,
    estimate,
    evaluate,
    export,
    models_cancel,
    models_downloads,
    models_fit,
    models_list,
    models_pull,
    models_rm,
    predict,
    runs_cancel,
    runs_compare,
    runs_delete,
    runs_list,
    runs_priority,
    runs_resume,
    runs_show,
    search,
    serve_supervisor,
    train,
)
from backend.config import CHAT, CHOICES, GREEDY, TASK_DEFAULTS, RunConfig
from backend.data.options import FORMATS, TASKS
from backend.runs.query import SORTS


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m backend.cli", description="Tuneboard command line.")
    p.add_argument("--workspace", help="workspace folder (default ./workspace or $TUNEBOARD_WORKSPACE)")
    sub = p.add_subparsers(dest="command", required=True)

    def cmd(parent, name: str, handler, help: str) -> argparse.ArgumentParser:
        c = parent.add_parser(name, help=help, description=help)
        c.add_argument("--json", action="store_true", help="print one JSON object or list on stdout")
        c.set_defaults(handler=handler)
        return c

    datasets = sub.add_parser("datasets", help="add, list, show and delete datasets").add_subparsers(
        dest="action", required=True
    )
    c = cmd(datasets, "add", datasets_add, "import a file, folder, zip or hub id (validated; nothing written on error)")
    c.add_argument("path", help="a file, a folder, a zip, or a Hugging Face hub id (owner/name)")
    c.add_argument("--name", help="dataset name (default: from the file); an existing name makes a new version")
    c.add_argument("--format", default="auto", choices=FORMATS, help="default: detected from the content")
    c.add_argument("--task", choices=TASKS, help="default: what the format implies")
    c.add_argument("--text-column", default="", help="classification/text: the column holding the text")
    c.add_argument("--label-column", default="", help="classification: the column holding the label")
    c.add_argument("--text-pair-column", default="", help="classification: an optional second text column")
    c.add_argument("--file-column", default="", help="image zip with a CSV: the column naming each image file")
    c.add_argument("--val-ratio", type=float, help="share held out for validation (default 0 for sft, 0.1 otherwise)")
    c.add_argument("--test-ratio", type=float, help="share held out for test (default 0 for sft, 0.1 otherwise)")
    c.add_argument("--seed", type=int, default=42, help="seed of the split (default: 42)")
    c.add_argument("--drop-duplicates", action="store_true", help="keep only the first of identical rows")
    c.add_argument(
        "--skip-invalid",
        action="store_true",
        help="leave out rows with problems (counted, the first listed) instead of refusing the file",
    )
    c.add_argument("--subset", default="", help="hub datasets: the subset (configuration)")
    c.add_argument("--split", default="", help="hub datasets: one split only")
    cmd(datasets, "list", datasets_list, "list datasets, newest first")
    c = cmd(datasets, "show", datasets_show, "one dataset with its statistics and first rows")
    c.add_argument("dataset", help="name or id")
    c.add_argument("--rows", type=int, default=5, help="rows to preview")
    c.add_argument("--offset", type=int, default=0, help="first row to preview")
    c.add_argument("--split", default="train", help="split to preview (train, validation, test)")
    c.add_argument("--model", help="also measure token lengths under this model's tokenizer")
    c.add_argument("--cutoff-len", type=int, help="with --model: count rows longer than this many tokens")
    c = cmd(datasets, "delete", datasets_delete, "delete a dataset (refused while a queued or running run uses it)")
    c.add_argument("dataset", help="name or id")

    c = cmd(sub, "train", train, "queue a fine-tuning run (with --wait, run it and return when it ends)")
    c.add_argument("--name", help="a name for the run")
    c.add_argument("--wait", action="store_true", help="block until the run ends; exit 1 unless it completed")
    c.add_argument("--timeout", type=float, help="with --wait: give up after this many seconds")
    c.add_argument(
        "--executor",
        choices=["local", "slurm", "ray"],
        help="where the workers start: local (this machine, default), slurm (the run waits for "
        "`python -m backend.runs.worker RUN --claim` on the cluster's nodes) or ray (a job on the Ray cluster of "
        "$TUNEBOARD_RAY_ADDRESS or the app's --ray; needs requirements-cluster.txt); docs/multinode.md",
    )
    c.add_argument("--workers", type=int, help="with --executor ray: Ray Train workers (processes; default 1)")
    c.add_argument("--worker-cpus", type=float, help="with --executor ray: CPUs per worker (default 1)")
    c.add_argument("--worker-gpus", type=float, help="with --executor ray: GPUs per worker (default 0)")
    _add_run_settings(c)

    c = cmd(sub, "estimate", estimate, "how long a run of these settings trains here (measured, not guessed)")
    c.add_argument("--measure", action="store_true", help="time a few real steps first if nothing was measured yet")
    _add_run_settings(c)

    c = cmd(
        sub,
        "search",
        search,
        "hyperparameter search (Optuna): trials are ordinary runs. `search --space S.yaml --dataset D ...` starts "
        "one, `search show ID`, `search stop ID`, `search list`",
    )
    c.add_argument("action", nargs="?", choices=["show", "stop", "list"], help="omit to start a search")
    c.add_argument("id", nargs="?", type=int, help="the search's id (show, stop)")
    c.add_argument(
        "--space",
        help="YAML/JSON file: setting -> {type: float|int, low, high, log} or {type: categorical, choices: [...]}",
    )
    c.add_argument("--metric", default="eval_loss", help="objective: eval_loss, accuracy, f1_macro, train_loss...")
    c.add_argument("--direction", default="minimize", choices=["minimize", "maximize"])
    c.add_argument("--sampler", default="tpe", choices=["tpe", "random", "grid"])
    c.add_argument("--trials", type=int, default=0, help="trials to run (default 10; a grid: all of it)")
    c.add_argument("--timeout-minutes", type=float, default=0.0, help="no new trial starts after this long (0: none)")
    c.add_argument("--prune", action=argparse.BooleanOptionalAction, default=True, help="median pruning (default on)")
    c.add_argument("--prune-startup", type=int, default=2, help="trials that run to the end before pruning starts")
    c.add_argument(
        "--parallel",
        type=int,
        default=1,
        help="trials queued at once (each waits for a device slot); with --executor ray, 0: as many as the "
        "cluster's CPUs/GPUs hold",
    )
    c.add_argument(
        "--executor",
        choices=["local", "ray"],
        help="where each trial trains: local (this machine, default) or ray (a job on the Ray cluster of "
        "$TUNEBOARD_RAY_ADDRESS or the app's --ray, trials running side by side); docs/multinode.md",
    )
    c.add_argument("--workers", type=int, help="with --executor ray: each trial's Ray Train workers (default 1)")
    c.add_argument("--worker-cpus", type=float, help="with --executor ray: CPUs per worker (default 1)")
    c.add_argument("--worker-gpus", type=float, help="with --executor ray: GPUs per worker (default 0)")
    c.add_argument("--search-seed", type=int, default=42, help="the sampler's seed")
    c.add_argument("--name", help="a name for the search")
    c.add_argument("--wait", action="store_true", help="block until the search ends")
    c.add_argument("--timeout", type=float, help="with --wait: give up after this many seconds")
    _add_run_settings(c)

    c = cmd(
        sub,
        "evaluate",
        evaluate,
        "score models on eval suites in a background job: `evaluate --model base:NAME|run:ID|FOLDER --suite S ...` "
        "starts one, `evaluate show ID` (per-sample rows), `evaluate list`, `evaluate cancel ID`",
    )
    c.add_argument("action", nargs="?", choices=["show", "list", "cancel"], help="omit to start an evaluation")
    c.add_argument("id", nargs="?", type=int, help="the evaluation's id (show, cancel)")
    c.add_argument("--model", action="append", default=[], help="base:NAME, run:ID or a model folder (repeat)")
    c.add_argument(
        "--suite",
        action="append",
        default=[],
        help="a shipped suite (identity, arithmetic, mc-en, mc-zh), a file, or dataset:NAME[:SPLIT] (classifiers)",
    )
    c.add_argument("--metric", help="for generation files: exact|numeric|regex:PATTERN|contains|bleu4|rouge_l|json")
    c.add_argument("--fewshot", type=int, default=0, help="multiple choice: examples in each prompt")
    c.add_argument("--choices", default="letters", choices=["letters", "cloze"],
                   help="multiple choice: letters (MMLU's format: the letter A-D after the listed options) "
                   "or cloze (each option's text scored after the question: for small models that favour "
                   "one letter)")  # fmt: skip
    c.add_argument("--executor", default="local", choices=["local", "ray"],
                   help="where it runs: local (this machine, one evaluation at a time) or ray (a job on the "
                   "workspace's Ray cluster, side by side with others)")  # fmt: skip
    c.add_argument("--worker-cpus", type=float, help="with --executor ray: CPUs of its job (default 1)")
    c.add_argument("--worker-gpus", type=float, help="with --executor ray: GPUs of its job (default 0)")
    c.add_argument("--disagreements", action="store_true", help="show: only samples the models score differently")
    c.add_argument("--csv", help="show: also write the samples side by side to this CSV file")
    c.add_argument("--limit", type=int, help="score only the first N samples of each suite")
    c.add_argument("--judge", help="a judge (base:NAME, run:ID, a folder, or openai:MODEL with $TUNEBOARD_JUDGE_URL) "
                   "grades the generation suites' answers")  # fmt: skip
    c.add_argument("--judge-mode", default="pairwise", choices=["pairwise", "rubric", "pass"],
                   help="pairwise: each later model against the first, both orders; "
                   "rubric: a 1-5 score; pass: pass/fail")  # fmt: skip
    c.add_argument("--rubric", help="rubric and pass modes: what a good answer does")
    c.add_argument("--human", help="human-labelled samples (JSON Lines): the judge's agreement with them is reported")
    c.add_argument("--wait", action="store_true", help="block until the evaluation ends")
    c.add_argument("--timeout", type=float, help="with --wait: give up after this many seconds")

    runs_help = "list, show, cancel, resume, compare and delete runs"
    runs = sub.add_parser("runs", help=runs_help).add_subparsers(dest="action", required=True)
    c = cmd(runs, "list", runs_list, "list runs, newest first (filters, search, sort and paging run in the database)")
    c.add_argument("--status", choices=["queued", "running", "completed", "failed", "cancelled", "interrupted"])
    c.add_argument("--task", help="only runs of this task")
    c.add_argument("--model", help="only runs of this model")
    c.add_argument("--dataset", help="only runs on this dataset (name)")
    c.add_argument("--search", help="text in the run's name, model or dataset, or a run id")
    c.add_argument("--sort", default="newest", choices=list(SORTS))
    c.add_argument("--limit", type=int, default=200, help="runs per page (default 200, at most 500)")
    c.add_argument("--offset", type=int, default=0, help="skip this many runs (paging)")
    c = cmd(runs, "show", runs_show, "one run with config, progress, metrics and artifacts")
    c.add_argument("id", type=int)
    c = cmd(runs, "cancel", runs_cancel, "cancel a queued or running run")
    c.add_argument("id", type=int)
    c = cmd(runs, "resume", runs_resume, "continue an interrupted, failed or cancelled run from its checkpoint")
    c.add_argument("id", type=int)
    c.add_argument("--as-new", action="store_true", help="start a new run (linked to this one) from its checkpoint")
    c.add_argument("--wait", action="store_true", help="block until the run ends; exit 1 unless it completed")
    c.add_argument("--timeout", type=float, help="with --wait: give up after this many seconds")

    c = cmd(runs, "delete", runs_delete, "delete a finished run with its files (not while queued or running)")
    c.add_argument("id", type=int)
    c = cmd(runs, "priority", runs_priority, "change a queued run's priority (higher starts first)")
    c.add_argument("id", type=int)
    c.add_argument("priority", type=int)
    c = cmd(runs, "compare", runs_compare, "2 to 5 runs side by side: differing settings, metrics, curves")
    c.add_argument("ids", type=int, nargs="+", metavar="ID")

    c = cmd(sub, "export", export, "export a completed run")
    c.add_argument("run_id", type=int)
    c.add_argument(
        "--format",
        default="merged",
        help="adapter|merged|int8|onnx|onnx-int8|gguf-f16|gguf-q8_0|gguf-q4_0 (default merged); each is loaded "
        "back and checked against the run's model before it is kept",
    )
    c.add_argument("--out", help="folder to write to (default workspace/exports/RUN_ID/FORMAT)")
    c.add_argument(
        "--push-to", help="also upload the export to this Hugging Face Hub repo (owner/name; needs HF_TOKEN)"
    )

    c = cmd(sub, "compress", compress, "prune a completed text classifier into a new run, measured beside it")
    c.add_argument("run_id", type=int)
    c.add_argument(
        "--prune",
        default="",
        help="unstructured:0.5 (zero the smallest 50%% of weights), neurons:0.3 (remove 30%% of MLP neurons), "
        "layers:2 (remove 2 layers); several joined by commas. Omit it to list the run's compressed variants",
    )
    c.add_argument("--recover-steps", type=int, default=0, help="fine-tune the pruned model this many steps (0: none)")
    c.add_argument("--tolerance", type=float, default=0.02, help="accuracy (0-1) it may lose before it is flagged")
    c.add_argument("--wait", action="store_true", help="with --recover-steps: wait for the recovery run and measure it")
    c.add_argument("--timeout", type=float, help="with --wait: give up after this many seconds")

    c = cmd(sub, "chat", chat, "one reply (greedy unless --temperature) from a completed run's model or a base model")
    c.add_argument("run_id", metavar="RUN_OR_MODEL", help="a completed run's id, or a base model (name, folder, id)")
    c.add_argument("--prompt", required=True)
    c.add_argument("--max-new-tokens", type=int, default=GREEDY.max_new_tokens)
    c.add_argument("--system", default="", help="a system message sent first (as the Playground's system prompt)")
    c.add_argument(
        "--temperature", type=float, default=0.0, help="0 (default): greedy, repeatable; the Playground: 0.7"
    )
    c.add_argument("--top-p", type=float, default=CHAT.top_p)
    c.add_argument("--top-k", type=int, default=CHAT.top_k)
    c.add_argument("--repetition-penalty", type=float, default=CHAT.repetition_penalty)
    c.add_argument("--seed", type=int, default=-1, help="with --temperature: the same seed, the same answer")
    c.add_argument("--stop", action="append", default=[], help="the answer ends before this text (repeatable)")

    c = cmd(sub, "predict", predict, "a completed run's answer, class probabilities, or a scored dataset split as CSV")
    c.add_argument("run_id", type=int)
    c.add_argument("--prompt", help="text: a question for a chat run, or the text a text classifier labels")
    c.add_argument("--answer", help="with --prompt, for a reward run: the answer it scores (higher: preferred)")
    c.add_argument("--image", help="an image file (PNG/JPEG) for an image-classification run")
    c.add_argument("--dataset", help="predict every row of this dataset (name or id); needs --split")
    c.add_argument("--split", help="with --dataset: train, validation or test")
    c.add_argument("--out", help="with --dataset: the CSV to write (default workspace/predictions/)")

    models = sub.add_parser("models", help="download, list, delete models; will a run fit").add_subparsers(
        dest="action", required=True
    )
    c = cmd(models, "pull", models_pull, "download a hub model in the background (resumes a stopped download)")
    c.add_argument("model", metavar="ID", help="org/name, optionally @revision (HF_ENDPOINT: a mirror)")
    c.add_argument("--revision", default="", help="a branch, tag or commit (default: main)")
    c.add_argument("--hub", choices=["hf", "modelscope"], help="default: $TUNEBOARD_HUB or hf")
    c.add_argument("--wait", action="store_true", help="block until the download ends; exit 2 unless it completed")
    c.add_argument("--timeout", type=float, help="with --wait: give up after this many seconds")
    cmd(models, "list", models_list, "models on disk (bundled and downloaded) with their size")
    c = cmd(models, "rm", models_rm, "delete a downloaded model")
    c.add_argument("model", metavar="ID")
    c.add_argument("--hub", choices=["hf", "modelscope"], help="default: $TUNEBOARD_HUB or hf")
    cmd(models, "downloads", models_downloads, "downloads, newest first, with progress")
    c = cmd(models, "cancel", models_cancel, "cancel a queued or running download")
    c.add_argument("id", type=int)
    c = cmd(models, "fit", models_fit, "will a run fit: estimated peak memory, what the device has, what to change")
    _add_run_settings(c)

    c = cmd(sub, "supervise", serve_supervisor, "run the job supervisor without the web UI")
    c.add_argument("--cpu-runs", type=int, help="runs training on the CPU at once (default 1, $TUNEBOARD_CPU_RUNS)")
    c.add_argument("--runs-per-gpu", type=int, help="runs sharing one GPU (default 1, $TUNEBOARD_RUNS_PER_GPU)")
    c.add_argument(
        "--ray",
        metavar="ADDRESS",
        help="submit ray runs to this Ray cluster (http://HEAD:8265; $TUNEBOARD_RAY_ADDRESS)",
    )
    auth = sub.add_parser("auth", help="users of `app.py --auth-file`").add_subparsers(dest="action", required=True)
    c = cmd(auth, "add", auth_add, "add a user (or change a password) in an auth file of scrypt hashes")
    c.add_argument("file", help="the auth file (created owner-only if missing)")
    c.add_argument("user")
    c.add_argument("--password-stdin", action="store_true", help="read the password from the first line of stdin")
    c.set_defaults(uses_workspace=False)
    return p


def _add_run_settings(c: argparse.ArgumentParser) -> None:
    """Every RunConfig field as an option (--learning-rate, --lora-rank, ...), with its hint and default."""
    for f in fields(RunConfig):
        flag = "--" + f.name.replace("_", "-")
        kind = {bool: None, int: int, float: float}.get(type(f.default), str)
        extra: dict[str, Any] = {"choices": CHOICES[f.name]} if f.name in CHOICES else {}
        where = RunConfig.where(f.name)  # e.g. "method: lora, qlora": the setting matters only there
        hint = f.metadata["help"] + (f" [{where}]" if where else "")
        if isinstance(f.default, bool):
            c.add_argument(flag, action=argparse.BooleanOptionalAction, default=None, help=hint)
        elif f.name == "reward":  # repeated: --reward exact@2 --reward 'regex:<answer>.*?</answer>'
            c.add_argument(flag, action=_JoinLines, default=None, metavar="SPEC", help=f"{hint} (repeatable)")
        else:
            per_task = "".join(f"; {t}: {d[f.name]}" for t, d in TASK_DEFAULTS.items() if f.name in d)
            c.add_argument(flag, type=kind, default=None, help=f"{hint} (default: {f.default}{per_task})", **extra)
    c.add_argument("--lr", dest="learning_rate", type=float, help="alias of --learning-rate")


class _JoinLines(argparse.Action):
    """A repeatable option whose values become one setting, a line each (RunConfig.reward)."""

    def __call__(self, parser, namespace, values, option_string=None):
        old = getattr(namespace, self.dest)
        setattr(namespace, self.dest, f"{old}\n{values}" if old else values)
