"""How every ``guienv`` subcommand ends on bad input: one line on stderr and exit code 2."""

from __future__ import annotations

import argparse
import os
import sys

from guienv.errors import DataError
from guienv.run.checkpoints import CheckpointSaveError

__all__ = ["run_command"]


def run_command(prog: str, args: argparse.Namespace) -> int:
    """``args.func(args)``; bad input (a DataError naming the file/record/field, a ValueError
    naming the option) and a checkpoint that cannot be saved print ``<prog>: <error>`` and return 2.
    ``GUIENV_DEBUG=1`` shows the traceback instead."""
    try:
        return int(args.func(args) or 0)
    except (DataError, ValueError, CheckpointSaveError) as exc:
        if os.environ.get("GUIENV_DEBUG"):
            raise
        print(f"{prog}: {exc}", file=sys.stderr)
        return 2
