"""Tuneboard: a browser dashboard for low-code fine-tuning.

    python app.py                                     # http://127.0.0.1:7860, this machine only
    python app.py --host 0.0.0.0 --auth-file users.txt   # your network, login required
    python app.py --demo 3                            # only the playground of run 3 (a public demo)

Builds the UI, starts the job supervisor (workers run as their own processes and survive an app
restart), and serves Gradio. Every option also reads an environment variable (TUNEBOARD_HOST, ...),
which is how a Hugging Face Space configures it. Binds to 127.0.0.1 unless told otherwise, and refuses
to listen on a network address without a login (or --insecure).
"""

from __future__ import annotations

import argparse
import ipaddress
import logging
import os
import sys

from backend.data.options import ImportLimits

log = logging.getLogger("tuneboard")

EXIT_BAD_INPUT = 2
LOOPBACK_NAMES = {"localhost", "localhost.localdomain"}


def _env_flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in ("1", "true", "yes", "on")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    env = os.environ.get
    p = argparse.ArgumentParser(description="Tuneboard: fine-tune models in your browser.")
    p.add_argument(
        "--host",
        default=env("TUNEBOARD_HOST") or env("GRADIO_SERVER_NAME") or "127.0.0.1",
        help="address to bind (default 127.0.0.1, or $TUNEBOARD_HOST); 0.0.0.0 exposes it to your network",
    )
    p.add_argument(
        "--port",
        type=int,
        default=int(env("TUNEBOARD_PORT") or env("GRADIO_SERVER_PORT") or "7860"),
        help="port (default 7860, or $TUNEBOARD_PORT)",
    )
    p.add_argument(
        "--share",
        action="store_true",
        default=_env_flag("TUNEBOARD_SHARE"),
        help="also open a public *.gradio.live link ($TUNEBOARD_SHARE=1); needs --auth or --auth-file",
    )
    p.add_argument(
        "--auth",
        action="append",
        default=[c for c in (env("TUNEBOARD_AUTH") or "").split(",") if c],
        metavar="USER:PASSWORD",
        help="require this login (repeatable; $TUNEBOARD_AUTH takes USER:PASSWORD,USER2:PASSWORD2)",
    )
    p.add_argument(
        "--auth-file",
        default=env("TUNEBOARD_AUTH_FILE"),
        help="require a login from this file of hashed passwords ($TUNEBOARD_AUTH_FILE); "
        "add users with `python -m backend.cli auth add FILE USER`",
    )
    p.add_argument(
        "--insecure",
        action="store_true",
        default=_env_flag("TUNEBOARD_INSECURE"),
        help="allow a network address or share link without a login (anyone who reaches it can train, "
        "read your datasets and download exports)",
    )
    p.add_argument(
        "--demo",
        default=env("TUNEBOARD_DEMO_RUN"),
        metavar="RUN_ID",
        help="serve only the playground of this completed run, nothing else ($TUNEBOARD_DEMO_RUN)",
    )
    p.add_argument(
        "--max-file-size",
        default=env("TUNEBOARD_MAX_FILE_SIZE") or f"{ImportLimits().max_upload_bytes // 1024**2}mb",
        help="largest upload accepted, e.g. 200mb or 1gb (default: the dataset import limit, 2048mb or "
        "$TUNEBOARD_MAX_UPLOAD_MB; or $TUNEBOARD_MAX_FILE_SIZE)",
    )
    p.add_argument(
        "--workspace",
        default=None,
        help="folder for the database, datasets, runs and exports (default ./workspace, or $TUNEBOARD_WORKSPACE)",
    )
    p.add_argument(
        "--cpu-runs", type=int, default=None, help="runs training on the CPU at once (default 1, $TUNEBOARD_CPU_RUNS)"
    )
    p.add_argument(
        "--runs-per-gpu", type=int, default=None, help="runs sharing a GPU at once (default 1, $TUNEBOARD_RUNS_PER_GPU)"
    )
    p.add_argument(
        "--ray",
        default=env("TUNEBOARD_RAY_ADDRESS"),
        metavar="ADDRESS",
        help="a Ray cluster for runs queued with executor ray: its dashboard's address, http://HEAD:8265 "
        "($TUNEBOARD_RAY_ADDRESS; needs `pip install -r requirements-cluster.txt`, docs/multinode.md)",
    )
    return p.parse_args(argv)


def is_loopback(host: str) -> bool:
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def exposure_refusal(host: str, share: bool, has_auth: bool, insecure: bool, demo: bool) -> str | None:
    """Why starting would expose the full app to others without a login; None when it is fine."""
    if has_auth or insecure or demo:  # a demo serves only one model's playground, made to be public
        return None
    if share:
        return (
            "--share publishes a public link, and without a login anyone who has it can train, read your "
            "datasets and download exports: add --auth USER:PASSWORD or --auth-file FILE (or --insecure)"
        )
    if not is_loopback(host):
        return (
            f"--host {host} makes the app reachable from other machines, and without a login anyone on "
            "the network can train, read your datasets and download exports: add --auth USER:PASSWORD "
            "or --auth-file FILE, bind 127.0.0.1, or pass --insecure if that is what you want"
        )
    return None


def demo_run_id(value: str | None) -> int | None:
    if value in (None, ""):
        return None
    if not str(value).strip().isdigit():
        raise ValueError(f"--demo / TUNEBOARD_DEMO_RUN must be a run id (a number), not {value!r}")
    return int(value)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    from backend import cpu

    cpu.wait_politely()  # before torch is imported: Playground and export threads sleep while they wait
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for chatty in ("alembic", "httpx"):
        logging.getLogger(chatty).setLevel(logging.WARNING)
    from backend.auth import Authenticator, AuthError

    try:
        demo = demo_run_id(args.demo)
        authenticator = Authenticator.build(args.auth, args.auth_file)
    except (AuthError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_BAD_INPUT
    refusal = exposure_refusal(args.host, args.share, authenticator is not None, args.insecure, demo is not None)
    if refusal:
        print(f"error: refusing to start: {refusal}", file=sys.stderr)
        return EXIT_BAD_INPUT
    if args.insecure and authenticator is None and (args.share or not is_loopback(args.host)):
        log.warning("--insecure: serving on %s without a login; anyone who reaches it has full access", args.host)
    if authenticator is not None:
        log.info("login required; %d user(s): %s", len(authenticator.users), ", ".join(authenticator.users))
    elif demo is not None and (args.share or not is_loopback(args.host)):
        log.warning("demo of run %d on %s without a login: anyone who reaches it can chat with it", demo, args.host)

    from backend.services import Services

    services = Services.open(args.workspace)
    if demo is not None:
        return _serve_demo(services, demo, args, authenticator)
    return _serve_full(services, args, authenticator)


def _launch_options(services, args, authenticator) -> dict:
    """What every launch shares: binding, login, upload limit, no MCP/SSR, files confined to exports."""
    from starlette.middleware import Middleware

    from webui.guards import LoginWall
    from webui.i18n import LanguageScript, translations

    ws = services.workspace.root
    return {
        "server_name": args.host,
        "server_port": args.port,
        "share": args.share,
        "auth": authenticator,
        "auth_message": "Tuneboard: sign in / 请登录",
        "max_file_size": args.max_file_size,
        "i18n": translations(),
        "mcp_server": False,
        "ssr_mode": False,
        "show_error": False,
        # Downloads come from exports and prediction CSVs only; the database, datasets, runs and models never do.
        "allowed_paths": [str(ws / "exports"), str(ws / "predictions")],
        "blocked_paths": [str(ws / name) for name in ("datasets", "runs", "models", "tuneboard.db")]
        + [str(services.workspace.models_dir)],
        "run_history": False,
        "app_kwargs": {"middleware": [Middleware(LanguageScript)] + ([Middleware(LoginWall)] if authenticator else [])},
    }


def _quiet_when_idle(blocks):
    """Gradio's queue polls for events every 1 ms (10 ms for progress) when nothing is queued: ~6% of a
    core for an app nobody looks at. Its own Windows intervals (50 ms, 100 ms) cost ~0.5% and add at
    most 50 ms before a click's handler starts (docs/benchmarks.md, bench/idle_cpu.py)."""
    queue = blocks._queue  # no public setting for it (gradio 6.31)
    queue.sleep_when_free, queue.progress_update_sleep_when_free = 0.05, 0.1
    return blocks


def _resolve_transformers() -> None:
    """Import transformers and resolve its common names here, in the main thread, before any other thread
    starts (~5 s). transformers 5 resolves its names lazily, and two threads resolving them for the first
    time at once can fail: "cannot import name 'AutoTokenizer' from 'transformers'" (a Datasets tab token
    count beside a Train tab estimate did, in the browser test). The app's handlers, supervisor and
    playground threads all use it."""
    import transformers

    for name in ("AutoConfig", "AutoTokenizer", "AutoModelForCausalLM", "AutoModelForSequenceClassification"):
        getattr(transformers, name)


def _serve_full(services, args, authenticator) -> int:
    import gradio as gr

    from backend.runs.supervisor import Supervisor
    from webui.app import CSS, build_app

    _resolve_transformers()
    services.ensure_examples()
    services.convert_default_model_in_background()
    try:
        supervisor = Supervisor(
            services.database, services.workspace, cpu_runs=args.cpu_runs, runs_per_gpu=args.runs_per_gpu, ray=args.ray
        )
    except ValueError as e:  # --ray without Ray installed
        print(f"error: {e}", file=sys.stderr)
        return EXIT_BAD_INPUT
    if args.ray:
        os.environ["TUNEBOARD_RAY_ADDRESS"] = args.ray  # the Train tab offers the cluster
    supervisor.start()
    app = build_app(services)
    # Exports are served from where they lie, not copied into Gradio's cache on every download
    # (a merged model is hundreds of MB); the exports folder is the one place downloads come from anyway.
    gr.set_static_paths([services.workspace.root / "exports"])
    try:
        _quiet_when_idle(app.queue(default_concurrency_limit=4)).launch(
            css=CSS, footer_links=["api"], **_launch_options(services, args, authenticator)
        )
    finally:
        supervisor.stop()
    return 0


def _serve_demo(services, run_id: int, args, authenticator) -> int:
    from starlette.middleware import Middleware

    from webui.app import CSS, build_demo
    from webui.guards import DemoGuard

    _resolve_transformers()
    try:
        app = build_demo(services, run_id)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_BAD_INPUT
    log.info("demo mode: only the playground of run %d; no datasets, training, export or files", run_id)
    options = _launch_options(services, args, authenticator)
    options["allowed_paths"], options["max_file_size"] = [], "1kb"  # nothing to download, nothing to upload
    options["app_kwargs"]["middleware"].append(Middleware(DemoGuard))
    _quiet_when_idle(app.queue(default_concurrency_limit=2)).launch(css=CSS, footer_links=["api"], **options)
    return 0


if __name__ == "__main__":
    sys.exit(main())
