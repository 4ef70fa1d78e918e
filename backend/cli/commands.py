"""The CLI's handlers: each turns parsed arguments into one backend call (backend.actions) and returns
what is printed (a dict or list; --json prints it as JSON) or an exit code."""

from __future__ import annotations

import contextlib
import json
import signal
import sys
from dataclasses import fields
from typing import Any

from backend import actions
from backend.config import RunConfig


def print_result(result: Any, as_json: bool) -> None:
    if as_json:
        print(json.dumps(result, ensure_ascii=False, default=str))
    elif isinstance(result, list):
        for row in result:
            print("  ".join(f"{k}={v}" for k, v in row.items() if not isinstance(v, dict | list)))
    else:
        for k, v in result.items():
            print(f"{k}: {v}")


def datasets_add(services, args) -> int:
    """One JSON object per line for each dataset imported (a LLaMA-Factory folder gives several)."""
    keys = ("format", "task", "text_column", "label_column", "text_pair_column", "file_column", "val_ratio")
    keys += ("test_ratio", "seed", "drop_duplicates", "skip_invalid", "subset", "split")
    options = {k: getattr(args, k) for k in keys}
    with _progress_bar() as progress:
        results = actions.add_datasets(services, args.path, args.name, options, progress)
    for result in results:
        print_result(result, args.json)
    return 0


@contextlib.contextmanager
def _progress_bar():
    """A progress bar on stderr when it is a terminal (tqdm stays silent in pipes and logs)."""
    from tqdm import tqdm

    with tqdm(
        total=100, file=sys.stderr, disable=None, leave=False, bar_format="{desc} {bar} {percentage:3.0f}%"
    ) as bar:

        def update(fraction: float, what: str) -> None:
            bar.set_description_str(what[:60], refresh=False)
            bar.update(max(0, round(fraction * 100) - bar.n))

        yield update


def datasets_delete(services, args) -> dict[str, Any]:
    return actions.delete_dataset(services, args.dataset)


def datasets_list(services, args) -> list[dict[str, Any]]:
    return actions.list_datasets(services)


def datasets_show(services, args) -> dict[str, Any]:
    return actions.show_dataset(
        services,
        args.dataset,
        rows=args.rows,
        split=args.split,
        offset=args.offset,
        model=args.model or "",
        cutoff_len=args.cutoff_len or 0,
    )


def train(services, args) -> dict[str, Any] | int:
    given = {f.name: getattr(args, f.name) for f in fields(RunConfig) if getattr(args, f.name, None) is not None}
    if args.executor:
        given["executor"] = args.executor
    for key in ("workers", "worker_cpus", "worker_gpus"):  # a ray run's workers and resources per worker
        if getattr(args, key) is not None:
            given[key] = getattr(args, key)
    out = actions.train(services, given, name=args.name or "", wait=args.wait, timeout=args.timeout)
    if args.wait and out["status"] != "completed":
        print_result(out, args.json)
        return 1
    return out


def estimate(services, args) -> dict[str, Any]:
    given = {f.name: getattr(args, f.name) for f in fields(RunConfig) if getattr(args, f.name, None) is not None}
    return actions.estimate(services, given, measure=args.measure)


def search(services, args) -> dict[str, Any] | list[dict[str, Any]] | int:
    if args.action == "list":
        return actions.list_searches(services)
    if args.action in ("show", "stop"):
        if args.id is None:
            raise ValueError(f"`search {args.action}` needs the search's id, e.g. search {args.action} 1")
        return (actions.show_search if args.action == "show" else actions.stop_search)(services, args.id)
    if not args.space:
        raise ValueError("--space is missing: a YAML/JSON file mapping settings to ranges, e.g. space.yaml")
    from backend.search.space import load_space

    space = load_space(args.space)
    given = {f.name: getattr(args, f.name) for f in fields(RunConfig) if getattr(args, f.name, None) is not None}
    options = {
        "metric": args.metric,
        "direction": args.direction,
        "sampler": args.sampler,
        "trials": args.trials,
        "timeout_minutes": args.timeout_minutes,
        "prune": args.prune,
        "prune_startup": args.prune_startup,
        "parallel": args.parallel,
        "seed": args.search_seed,
        "executor": args.executor or "local",
        "workers": args.workers,  # with ray: each trial's workers and resources per worker (None: the default)
        "worker_cpus": args.worker_cpus,
        "worker_gpus": args.worker_gpus,
    }
    out = actions.search(services, given, space, options, name=args.name or "", wait=args.wait, timeout=args.timeout)
    if args.wait and out["status"] != "completed":
        print_result(out, args.json)
        return 1
    return out


def runs_list(services, args) -> list[dict[str, Any]]:
    return actions.list_runs(
        services,
        status=args.status,
        task=args.task,
        model=args.model,
        dataset=args.dataset,
        search=args.search or "",
        sort=args.sort,
        limit=args.limit,
        offset=args.offset,
    )


def runs_show(services, args) -> dict[str, Any]:
    return actions.show_run(services, args.id)


def runs_cancel(services, args) -> dict[str, Any]:
    return actions.cancel_run(services, args.id)


def runs_resume(services, args) -> dict[str, Any] | int:
    out = actions.resume_run(services, args.id, wait=args.wait, timeout=args.timeout, as_new=args.as_new)
    if args.wait and out["status"] != "completed":
        print_result(out, args.json)
        return 1
    return out


def runs_delete(services, args) -> dict[str, Any]:
    return actions.delete_run(services, args.id)


def runs_priority(services, args) -> dict[str, Any]:
    return actions.set_priority(services, args.id, args.priority)


def runs_compare(services, args) -> dict[str, Any]:
    return actions.compare_runs(services, args.ids)


def export(services, args) -> dict[str, Any]:
    return actions.export(services, args.run_id, args.format, out=args.out, push_to=args.push_to)


def compress(services, args) -> dict[str, Any]:
    options = {"recover_steps": args.recover_steps, "tolerance": args.tolerance}
    return actions.compress(services, args.run_id, args.prune, wait=args.wait, timeout=args.timeout, **options)


def predict(services, args) -> dict[str, Any]:
    return actions.predict(
        services, args.run_id, args.prompt or "", args.image, args.dataset or "", args.split or "", out=args.out,
        answer=args.answer,
    )  # fmt: skip


def chat(services, args) -> dict[str, Any]:
    from backend.playground.chat import chat_source

    sampling = {"temperature": args.temperature, "top_p": args.top_p, "top_k": args.top_k, "seed": args.seed}
    sampling |= {"repetition_penalty": args.repetition_penalty, "stop": tuple(args.stop)}
    source = chat_source(args.run_id)
    return actions.chat(services, source, args.prompt, args.max_new_tokens, args.system, **sampling)


def evaluate(services, args) -> dict[str, Any] | list[dict[str, Any]]:
    if args.action == "list":
        return actions.evaluation_list(services)
    if args.action in ("show", "cancel"):
        if args.id is None:
            raise ValueError(f"`evaluate {args.action}` needs the evaluation's id, e.g. evaluate {args.action} 1")
        if args.action == "cancel":
            return actions.evaluation_cancel(services, args.id)
        return actions.evaluation_show(services, args.id, args.disagreements, args.csv)
    return actions.evaluate(
        services,
        args.model,
        args.suite,
        metric=args.metric,
        fewshot=args.fewshot,
        limit=args.limit,
        choices=args.choices,
        executor=args.executor,
        cluster={"worker_cpus": args.worker_cpus, "worker_gpus": args.worker_gpus},
        wait=args.wait,
        timeout=args.timeout,
        judge={"model": args.judge, "mode": args.judge_mode, "rubric": args.rubric, "human": args.human}
        if args.judge
        else None,
    )


def models_pull(services, args) -> dict[str, Any]:
    return actions.models_pull(
        services, args.model, revision=args.revision, hub=args.hub, wait=args.wait, timeout=args.timeout
    )


def models_list(services, args) -> list[dict[str, Any]]:
    return actions.models_list(services)


def models_rm(services, args) -> dict[str, Any]:
    return actions.models_rm(services, args.model, hub=args.hub)


def models_downloads(services, args) -> list[dict[str, Any]]:
    return actions.models_downloads(services)


def models_cancel(services, args) -> dict[str, Any]:
    return actions.models_cancel(services, args.id)


def models_fit(services, args) -> dict[str, Any]:
    given = {f.name: getattr(args, f.name) for f in fields(RunConfig) if getattr(args, f.name, None) is not None}
    return actions.models_fit(services, given)


def auth_add(services, args) -> dict[str, Any]:
    """Add or replace a user in an auth file; the password comes from stdin or a prompt, never argv."""
    import getpass

    from backend.auth import add_user

    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = getpass.getpass(f"password for {args.user}: ")
        if getpass.getpass("again: ") != password:
            raise ValueError("the two passwords differ; nothing was written")
    added = add_user(args.file, args.user, password)
    return {"file": args.file, "user": args.user, "added": added, "replaced": not added}


def serve_supervisor(services, args) -> int:
    from backend.runs.supervisor import Supervisor

    supervisor = Supervisor(
        services.database, services.workspace, cpu_runs=args.cpu_runs, runs_per_gpu=args.runs_per_gpu, ray=args.ray
    )
    if not supervisor.acquire():
        raise ValueError("another supervisor (an app or `supervise`) already runs for this workspace")
    # Ctrl-C and SIGTERM (docker stop, systemd) end the loop, also when started in the background,
    # where a shell leaves SIGINT ignored and Python would inherit that. The handlers go in before
    # the "supervising" line, so a signal sent as soon as it appears is never lost.
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, signal.default_int_handler)
    try:
        print(f"supervising {services.workspace.root}; Ctrl-C to stop (workers keep running)", file=sys.stderr)
        supervisor.loop()
    except KeyboardInterrupt:
        return 0
    return 0
