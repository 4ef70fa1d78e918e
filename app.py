"""Tuneboard: a browser dashboard for low-code fine-tuning.

    python app.py [--host 127.0.0.1] [--port 7860] [--workspace ./workspace]

Builds the UI, starts the job supervisor (workers run as their own processes and survive an app
restart), and serves Gradio. Binds to 127.0.0.1 unless told otherwise.
"""

from __future__ import annotations

import argparse
import logging
import os


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description="Tuneboard: fine-tune models in your browser.")
    p.add_argument(
        "--host",
        default=os.environ.get("TUNEBOARD_HOST", "127.0.0.1"),
        help="address to bind (default 127.0.0.1, or $TUNEBOARD_HOST); 0.0.0.0 exposes it to your network",
    )
    p.add_argument(
        "--port",
        type=int,
        default=int(os.environ.get("TUNEBOARD_PORT", "7860")),
        help="port (default 7860, or $TUNEBOARD_PORT)",
    )
    p.add_argument(
        "--workspace",
        default=None,
        help="folder for the database, datasets, runs and exports (default ./workspace, or $TUNEBOARD_WORKSPACE)",
    )
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for chatty in ("alembic", "httpx"):
        logging.getLogger(chatty).setLevel(logging.WARNING)
    from backend.jobs import Supervisor
    from backend.services import Services
    from webui.app import CSS, build_app

    services = Services.open(args.workspace)
    services.ensure_examples()
    services.convert_default_model_in_background()
    supervisor = Supervisor(services.database, services.workspace)
    supervisor.start()
    app = build_app(services)
    try:
        app.queue(default_concurrency_limit=4).launch(
            server_name=args.host,
            server_port=args.port,
            css=CSS,
            allowed_paths=[str(services.workspace.root / "exports")],
            footer_links=["api"],
        )
    finally:
        supervisor.stop()


if __name__ == "__main__":
    main()
