"""Tuneboard from the command line: the same services as the browser.

    python -m backend.cli datasets add examples/identity.json --name identity --json
    python -m backend.cli train --dataset identity --method lora --max-steps 20 --wait --json
    python -m backend.cli runs show 1 --json
    python -m backend.cli export 1 --format merged --json

Errors print one line on stderr and exit with code 2; nothing is written.
- parser.py    the commands and their options (every RunConfig field is a --flag)
- commands.py  one handler per command: arguments -> one backend.actions call
"""

from __future__ import annotations

import logging
import sys

from sqlalchemy.exc import SQLAlchemyError

from backend import cpu
from backend.cli.commands import print_result
from backend.cli.parser import build_parser

EXIT_BAD_INPUT = 2


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    cpu.wait_politely()  # before torch is imported (exports, predictions and a foreground supervisor)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        from backend.services import Services

        services = Services.open(args.workspace) if getattr(args, "uses_workspace", True) else None
        result = args.handler(services, args)
    except (ValueError, TimeoutError, OSError, SQLAlchemyError) as e:
        print(f"error: {e}".splitlines()[0], file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("interrupted (a started run keeps going; `runs cancel ID` stops it)", file=sys.stderr)
        return 130
    if isinstance(result, int):
        return result
    print_result(result, args.json)
    return 0
