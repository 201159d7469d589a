"""``nnopt-fast``: the parser of every command, and how errors and Ctrl-C end a run."""

import os
import sys

from . import diagnose, predict, train
from .options import Interrupted, Parser, UsageError, one_line

#: Exit statuses: a usage or data error, and Ctrl-C (128 + SIGINT, as shells report it).
USAGE_ERROR, INTERRUPTED = 2, 130


def build_parser():
    """The ``nnopt-fast`` argument parser with its ``train``, ``predict`` and ``diagnose``."""
    from .. import __version__

    parser = Parser(prog="nnopt-fast",
                    description="Fast CPU training of fully connected neural networks.")
    parser.add_argument("--version", action="version", version=f"nnopt_fast {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    for command in (train, predict, diagnose):
        command.add_parser(sub)
    return parser


def main(argv=None):
    """Run the command line with ``argv`` (default ``sys.argv[1:]``); returns the exit status.

    Usage errors and bad data files print one line on stderr and return 2; Ctrl-C prints
    one line and returns 130.
    """
    try:
        parser = build_parser()
        args = parser.parse_args(argv)
        if args.command is None:
            parser.error("choose a command: train, predict or diagnose (see nnopt-fast "
                         "--help)")
        return args.func(args)
    except UsageError as exc:
        print(f"nnopt-fast: error: {one_line(exc)}", file=sys.stderr)
        return USAGE_ERROR
    except Interrupted as exc:
        print(f"nnopt-fast: {one_line(exc)}", file=sys.stderr)
        return INTERRUPTED
    except KeyboardInterrupt:
        print("nnopt-fast: interrupted", file=sys.stderr)
        return INTERRUPTED
    except BrokenPipeError:
        # The reader of our output went away (`nnopt-fast predict ... | head`): stop
        # quietly, without a second error when Python flushes stdout at exit.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 1
