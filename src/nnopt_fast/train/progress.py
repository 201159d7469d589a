"""What ``nf.train(verbose=True)`` shows: a tqdm bar on a terminal, a line per epoch otherwise."""

import sys

#: The records shown, in this order, when the run keeps them.
SHOWN = ("loss", "score", "val_loss", "val_score")


def format_record(record):
    """``"loss=0.01234 val_loss=..."``: four significant digits, so that no loss reads 0.0000."""
    return " ".join(f"{k}={record[k]:.4g}" for k in SHOWN if k in record)


def progress(total, verbose, first_epoch=1):
    """A reporter ``report(epoch, record)``; ``report(None, None)`` closes it.

    Parameters
    ----------
    total : int
        Epochs of this run.
    verbose : bool
        False reports nothing.
    first_epoch : int
        The number of the run's first epoch (a resumed run goes on counting).
    """
    if not verbose:
        return lambda epoch, record: None
    if sys.stderr.isatty():
        from tqdm.auto import tqdm

        bar = tqdm(total=total, unit="epoch", leave=True, file=sys.stderr)

        def report(epoch, record):
            if epoch is None:
                bar.close()
                return
            bar.set_postfix_str(format_record(record), refresh=False)
            bar.update(1)

        return report
    last = first_epoch + total - 1

    def report(epoch, record):
        if epoch is not None:
            print(f"epoch {epoch}/{last} {format_record(record)}", file=sys.stderr, flush=True)

    return report
