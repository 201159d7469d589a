"""Figures of the diagnosis: learning curve, validation curve, bias and variance against a parameter."""

import numbers

import numpy as np


def _figure(ax, figsize):
    """A new Agg-backed Figure and axes, or ``ax`` and its figure.

    Figures are built without pyplot: no global backend switch, no GUI, nothing kept
    alive by a figure manager, so it works the same in scripts, workers and notebooks.
    """
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        raise ImportError(
            "plotting needs matplotlib: pip install 'nnopt_fast[plot]' (or matplotlib>=3.7)"
        ) from None
    if ax is not None:
        return ax.figure, ax
    fig = Figure(figsize=figsize, layout="constrained")
    FigureCanvasAgg(fig)
    return fig, fig.add_subplot()


def _x_values(values):
    """Plot positions and tick labels for a parameter range (numbers or e.g. tuples)."""
    if all(isinstance(v, numbers.Real) and not isinstance(v, bool) for v in values):
        x = np.asarray(values, dtype=np.float64)
        positive = np.all(x > 0)
        log = bool(positive and len(x) > 2 and x.max() / x.min() >= 100)
        return x, None, log
    return np.arange(len(values), dtype=np.float64), [str(v) for v in values], False


def _band(ax, x, values, label, color, marker):
    mean, std = values.mean(axis=1), values.std(axis=1)
    ax.plot(x, mean, marker=marker, color=color, label=label)
    if values.shape[1] > 1:
        ax.fill_between(x, mean - std, mean + std, color=color, alpha=0.2, linewidth=0)


def _curve_panels(fig, ax, curve, x, xlabel, labels, log, what, title):
    for name, color, marker in (("train", "tab:blue", "o"), ("validation", "tab:orange", "s")):
        data = getattr(curve, f"{name}_{what}")
        _band(ax, x, data, f"{name} ({curve.n_splits} splits)" if curve.n_splits > 1 else name,
              color, marker)
    if log:
        ax.set_xscale("log")
    if labels is not None:
        ax.set_xticks(x, labels, rotation=30 if max(len(s) for s in labels) > 6 else 0)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(curve.loss_name if what == "losses" else curve.score_name)
    ax.set_title(title)
    ax.grid(True, alpha=0.3)
    ax.legend()
    return fig


def _check_what(what):
    if what not in ("losses", "scores"):
        raise ValueError(f"what must be 'losses' or 'scores', got {what!r}")


def plot_learning_curve(curve, what="losses", ax=None, figsize=(6.0, 4.0)):
    """Plot a :class:`LearningCurve`: training and validation loss (or score) against size.

    Parameters
    ----------
    curve : LearningCurve
    what : {"losses", "scores"}, default="losses"
    ax : matplotlib Axes or None
        Draw into it; None creates a new Figure.
    figsize : tuple of float

    Returns
    -------
    matplotlib.figure.Figure
        Save it with ``fig.savefig("lc.png")``.
    """
    _check_what(what)
    fig, ax = _figure(ax, figsize)
    x = np.asarray(curve.train_sizes, dtype=np.float64)
    return _curve_panels(fig, ax, curve, x, "training samples", None, False, what,
                         "Learning curve")


def plot_validation_curve(curve, what="losses", ax=None, figsize=(6.0, 4.0)):
    """Plot a :class:`ValidationCurve`: training and validation loss (or score) per value.

    Numeric ranges spanning two decades or more get a log x axis; other values (tuples of
    ``hidden_layer_sizes``) are shown as categories.

    Returns
    -------
    matplotlib.figure.Figure
    """
    _check_what(what)
    fig, ax = _figure(ax, figsize)
    x, labels, log = _x_values(curve.param_range)
    return _curve_panels(fig, ax, curve, x, curve.param_name, labels, log, what,
                         f"Validation curve over {curve.param_name}")


def plot_bias_variance_curve(curve, ax=None, figsize=(6.0, 4.0)):
    """Plot a :class:`BiasVarianceCurve`: bias², variance and expected loss per value.

    Returns
    -------
    matplotlib.figure.Figure
    """
    fig, ax = _figure(ax, figsize)
    x, labels, log = _x_values(curve.param_range)
    zero_one = curve.results[0].loss == "0-1"
    ax.plot(x, curve.expected_loss, marker="o", color="black", label="expected loss")
    ax.plot(x, curve.bias_squared, marker="s", color="tab:red",
            label="bias (Domingos)" if zero_one else "bias²")
    ax.plot(x, curve.variance, marker="^", color="tab:green", label="variance")
    if log:
        ax.set_xscale("log")
    if labels is not None:
        ax.set_xticks(x, labels)
    ax.set_xlabel(curve.param_name)
    ax.set_ylabel("0-1 loss" if zero_one else "squared error")
    ax.set_title(f"Bias and variance over {curve.param_name} "
                 f"({curve.results[0].n_rounds} bootstrap rounds)")
    ax.grid(True, alpha=0.3)
    ax.legend()
    return fig
