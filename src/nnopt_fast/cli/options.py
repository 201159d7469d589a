"""The command line's options shared by its commands: one name per concept, every default shown."""

import argparse
import re

__all__ = ["UsageError", "Interrupted", "Parser", "add", "add_data_options",
           "add_penalty_options", "add_common_options", "int_list", "float_or_list",
           "one_line", "flag_error", "FLAGS"]

#: The Python argument each option becomes, and the flag that spells it: errors raised
#: by the library in Python's terms are reported with the flag.
FLAGS = {"n_threads": "--threads", "batch_size": "--batch-size", "l1_method": "--l1-method",
         "lr": "--lr", "epochs": "--epochs", "l2": "--l2", "l1": "--l1",
         "dropout": "--dropout", "momentum": "--momentum", "layer_sizes": "--layers",
         "alpha": "--alpha", "max_iter": "--epochs", "random_state": "--seed",
         "EarlyStopping: patience": "--early-stopping"}


class UsageError(Exception):
    """A bad command line or data file: reported as one line on stderr, exit status 2."""


class Interrupted(Exception):
    """Ctrl-C: reported as one line on stderr, exit status 130."""


class Parser(argparse.ArgumentParser):
    """An ArgumentParser that raises :class:`UsageError` instead of printing usage and exiting."""

    def error(self, message):
        command = self.prog.removeprefix("nnopt-fast").strip()
        raise UsageError(f"{command}: {message}" if command else message)


def one_line(exc):
    """An exception's message on one line."""
    return " ".join(str(exc).split()) or type(exc).__name__


def flag_error(exc, command):
    """A :class:`UsageError` from a library error, its Python argument names spelled as flags."""
    message = one_line(exc)
    for name, flag in FLAGS.items():
        message = re.sub(rf"(?<![\w-]){name}(?!\w)", flag, message)
    return UsageError(f"{command}: {message}")


def add(parser, *flags, default=None, shown=None, help="", **kwargs):
    """``parser.add_argument`` with the default written into the help text.

    ``shown`` is how the default reads (e.g. ``"all available cores"``); without it the
    default value itself. Flags that are off unless given (``store_true``) and required
    options say nothing.
    """
    if kwargs.get("action") not in ("store_true", "store_false") and not kwargs.get("required"):
        text = shown if shown is not None else _spell(default)
        help = f"{help} (default: {text})" if help else f"default: {text}"
        kwargs["default"] = default
    parser.add_argument(*flags, help=help.replace("%", "%%"), **kwargs)


def _spell(value):
    if isinstance(value, tuple):
        return ",".join(str(v) for v in value) or "none"
    return str(value)


def int_list(text):
    """``"64,32"`` -> ``(64, 32)``; ``""`` or ``"none"`` -> ``()`` (no hidden layer)."""
    if text.strip().lower() in ("", "none"):
        return ()
    try:
        sizes = tuple(int(s) for s in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated layer sizes like 64,32, got {text!r}") from None
    if any(s < 1 for s in sizes):
        raise argparse.ArgumentTypeError(f"layer sizes must be >= 1, got {text!r}")
    return sizes


def float_or_list(text):
    """``"0.2"`` -> ``0.2``; ``"0.2,0.1"`` -> ``(0.2, 0.1)`` (one value per hidden layer)."""
    try:
        values = tuple(float(s) for s in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number or a comma-separated list, "
                                         f"got {text!r}") from None
    return values[0] if len(values) == 1 else values


def threads(text):
    """``--threads``: a count >= 1, or -1 / ``all`` for every available core."""
    if text.strip().lower() in ("all", "auto"):
        return None
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of threads or 'all', "
                                         f"got {text!r}") from None


def add_data_options(parser, data_help, label=True):
    """``--data``, ``--header`` and (``label``) ``--label-column``: the one data loader's."""
    add(parser, "--data", metavar="FILE", shown=data_help[1], help=data_help[0])
    add(parser, "--header", choices=["auto", "yes", "no"], default="auto",
        help="whether the first CSV row names the columns; auto: yes when none of its "
             "fields is a number")
    if label:
        add(parser, "--label-column", metavar="NAME|N", default="last",
            help="the CSV column of the targets: a header name, or its number counted "
                 "from 1 (negative: from the end)")


def add_penalty_options(parser, meaning):
    """``--l2`` and ``--alpha``: two spellings of the L2 penalty, each with its meaning.

    ``meaning`` says which one the command's trainer takes natively and how the other
    is converted.
    """
    group = parser.add_mutually_exclusive_group()
    add(group, "--l2", type=float, metavar="LAMBDA", shown=meaning["l2"][1],
        help="L2 penalty lambda of the cost lambda/(2m) sum ||W||^2, m = the training "
             "rows" + meaning["l2"][0])
    add(group, "--alpha", type=float, metavar="ALPHA", shown=meaning["alpha"][1],
        help="L2 penalty as scikit-learn's MLP spells it: alpha/(2B) sum ||W||^2 per "
             "batch of B rows" + meaning["alpha"][0])


def add_common_options(parser, seed_help, epochs_default, epochs_help):
    """``--seed`` and ``--epochs``, spelled alike in every command."""
    add(parser, "--seed", type=int, default=0, help=seed_help)
    add(parser, "--epochs", type=int, default=epochs_default, metavar="N", help=epochs_help)
