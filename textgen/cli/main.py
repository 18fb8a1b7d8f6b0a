"""The command line: everything the app does, scriptable.

Errors the user can fix (`TextgenError`) print one line on stderr and exit with status 2; a
traceback means a bug. Commands that produce data take `--json` and then print one JSON object
(on the last line of stdout for long-running commands). TensorFlow is imported only by the
commands that need it. Each command group lives in its own module (`corpus`, `train`, `decode`,
`runs`), which registers its arguments beside its handlers; this module assembles the parser.
"""

from __future__ import annotations

import argparse
import sys
from typing import Sequence

from textgen.cli import corpus, decode, runs, train
from textgen.cli.common import EXIT_USAGE, Parser
from textgen.core.errors import TextgenError


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="python -m textgen",
        description="TextGen Lab: train, compare and inspect text-generation models.",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    commands.required = True
    for group in (corpus, train, decode, runs):  # the order of the commands in --help
        group.register(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.handler(args) or 0)
    except TextgenError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0
