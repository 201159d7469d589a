"""Figures of the diagnosis: learning curve, validation curve, bias and variance against a parameter."""

import numbers

import numpy as np

from ._common import fmt

#: How a parameter is labelled on an axis: by what it means.
PARAM_LABELS = {
    "alpha": "alpha (L2 penalty)",
    "l1": "l1 (L1 penalty)",
    "l2": "l2 (L2 penalty λ)",
    "dropout": "dropout (drop probability)",
    "hidden_layer_sizes": "hidden layer sizes",
    "max_iter": "max_iter (epochs)",
    "learning_rate_init": "learning rate",
    "batch_size": "batch size (rows per step)",
}
LOSS_LABELS = {"log_loss": "log-loss", "zero_one": "0-1 error", "mse": "mean squared error"}
SCORE_LABELS = {"accuracy": "accuracy", "r2": "R²"}
_BASELINE = dict(color="0.45", linestyle=":", linewidth=1.5)


def param_label(name):
    """``"alpha (L2 penalty)"`` for ``"mlp__alpha"``: the parameter by its meaning."""
    leaf = name.rsplit("__", 1)[-1]
    return PARAM_LABELS.get(leaf, leaf)


def _figure(ax, figsize, n_panels=1):
    """A new Agg-backed Figure and its axes, or ``ax`` (one or a pair) and its figure.

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
        axes = list(ax) if isinstance(ax, (list, tuple, np.ndarray)) else [ax]
        if len(axes) != n_panels:
            raise ValueError(f"this figure has {n_panels} panel(s); ax holds {len(axes)}")
        return axes[0].figure, axes
    fig = Figure(figsize=figsize, layout="constrained")
    FigureCanvasAgg(fig)
    return fig, [fig.add_subplot(1, n_panels, k + 1) for k in range(n_panels)]


def _title(what, model, data):
    """``what``, naming the model and the data when they are given."""
    if model and data:
        return f"{what}\n{model} on {data}"
    return f"{what}\n{model or data}" if (model or data) else what


def _x_values(values):
    """Plot positions and tick labels for a parameter range (numbers or e.g. tuples)."""
    if all(isinstance(v, numbers.Real) and not isinstance(v, bool) for v in values):
        x = np.asarray(values, dtype=np.float64)
        positive = np.all(x > 0)
        log = bool(positive and len(x) > 2 and x.max() / x.min() >= 100)
        return x, None, log
    return np.arange(len(values), dtype=np.float64), [str(v) for v in values], False


def _band(ax, x, values, label, color, marker, linestyle="-"):
    mean, std = values.mean(axis=1), values.std(axis=1)
    ax.plot(x, mean, marker=marker, color=color, linestyle=linestyle, label=label)
    if values.shape[1] > 1:
        ax.fill_between(x, mean - std, mean + std, color=color, alpha=0.2, linewidth=0)


def _x_axis(ax, x, labels, log, xlabel):
    if log:
        ax.set_xscale("log")
    if labels is not None:
        ax.set_xticks(x, labels, rotation=30 if max(len(s) for s in labels) > 6 else 0)
    ax.set_xlabel(xlabel)
    ax.grid(True, alpha=0.3)


def _curve_panel(ax, curve, x, what, best=None):
    """Training and validation means (bands: ± one std over the splits) and the baseline."""
    splits = f" ({curve.n_splits} splits)" if curve.n_splits > 1 else ""
    for name, color, marker, style in (("train", "tab:blue", "o", "--"),
                                       ("validation", "tab:orange", "s", "-")):
        _band(ax, x, getattr(curve, f"{name}_{what}"), f"{name}{splits}", color, marker, style)
    if what == "losses":
        baseline, ylabel = curve.baseline_loss, LOSS_LABELS.get(curve.loss_name,
                                                                  curve.loss_name)
    else:
        baseline, ylabel = curve.baseline_score, SCORE_LABELS.get(curve.score_name,
                                                                    curve.score_name)
    if best is not None:
        k, value = best
        ax.axvline(x[k], color="tab:red", linewidth=1, alpha=0.6)
        ax.plot([x[k]], [value], marker="*", markersize=14, color="tab:red",
                linestyle="none", label=f"best validation: {fmt(value)}", zorder=5)
    _baseline(ax, baseline)
    ax.set_ylabel(ylabel)
    ax.legend(fontsize="small")


def _baseline(ax, value):
    """Mark a constant predictor's ``value``: a dotted line, or, when it lies far outside
    the curves (a good model's losses next to a constant's), an arrow beside the axes
    pointing its way and a legend entry with its value, so that the curves keep their
    scale."""
    if value is None:
        return
    lo, hi = ax.get_ylim()
    span = hi - lo
    label = f"constant predictor ({fmt(value)})"
    if lo - span <= value <= hi + span:
        ax.axhline(value, label=label, **_BASELINE)
        return
    above = value > hi
    ax.plot([], [], label=f"{label}, {'above' if above else 'below'} the axes", **_BASELINE)
    # Just right of the axes, where no curve runs; the blank text keeps it in the layout.
    ax.annotate(" ", xy=(1.02, 1.0 if above else 0.0), xytext=(1.02, 0.85 if above else 0.15),
                xycoords="axes fraction", annotation_clip=False, ha="center", va="center",
                arrowprops=dict(arrowstyle="->", color=_BASELINE["color"], linewidth=1.5))
    ax.set_ylim(lo, hi)


def _check_what(what, allowed=("losses", "scores")):
    if what not in allowed:
        raise ValueError(f"what must be one of {allowed}, got {what!r}")


def plot_learning_curve(curve, what="losses", ax=None, figsize=(6.0, 4.2), *, model=None,
                        data=None):
    """Plot a :class:`LearningCurve`: training and validation loss (or score) against size.

    Bands are ± one standard deviation over the CV splits; a dotted line marks a constant
    predictor (the training folds' majority class or mean).

    Parameters
    ----------
    curve : LearningCurve
    what : {"losses", "scores"}, default="losses"
    ax : matplotlib Axes or None
        Draw into it; None creates a new Figure.
    figsize : tuple of float
    model, data : str or None
        Named in the title (e.g. ``"MLPClassifier(32,)"``, ``"digits"``).

    Returns
    -------
    matplotlib.figure.Figure
        Save it with ``fig.savefig("lc.png")``.
    """
    _check_what(what)
    fig, (ax,) = _figure(ax, figsize)
    _curve_panel(ax, curve, np.asarray(curve.train_sizes, dtype=np.float64), what)
    _x_axis(ax, None, None, False, "training samples")
    ax.set_title(_title("Learning curve", model, data))
    return fig


def plot_validation_curve(curve, what="both", ax=None, figsize=None, *, model=None,
                          data=None):
    """Plot a :class:`ValidationCurve`: training and validation loss and score per value.

    ``what="both"`` draws the loss (log-loss, or mse) and the score (accuracy, or R²)
    side by side. The best validation value of each is marked with a star; a dotted line
    marks a constant predictor (an arrow at the edge when it lies far off the curves). Numeric ranges spanning two decades or more get a log x
    axis; other values (tuples of ``hidden_layer_sizes``) are shown as categories, and
    the parameter is labelled by its meaning ("alpha (L2 penalty)").

    Parameters
    ----------
    curve : ValidationCurve
    what : {"both", "losses", "scores"}, default="both"
    ax : matplotlib Axes, a pair of them for ``"both"``, or None
    figsize : tuple of float or None
        Default (10, 4.2) for two panels, (6, 4.2) for one.
    model, data : str or None
        Named in the title.

    Returns
    -------
    matplotlib.figure.Figure
    """
    _check_what(what, ("both", "losses", "scores"))
    panels = ["losses", "scores"] if what == "both" else [what]
    fig, axes = _figure(ax, figsize or ((10.0, 4.2) if what == "both" else (6.0, 4.2)),
                        len(panels))
    x, labels, log = _x_values(curve.param_range)
    label = param_label(curve.param_name)
    for ax, panel in zip(axes, panels):
        means = curve.mean(f"validation_{panel}")
        pick = np.argmin if panel == "losses" else np.argmax
        k = len(means) - 1 - int(pick(means[::-1]))  # ties: the value listed last
        _curve_panel(ax, curve, x, panel, best=(k, float(means[k])))
        _x_axis(ax, x, labels, log, label)
    title = _title(f"Validation curve over {label}", model, data)
    if len(axes) > 1:
        fig.suptitle(title)
    else:
        axes[0].set_title(title)
    return fig


def plot_bias_variance_curve(curve, ax=None, figsize=(6.5, 4.5), *, model=None, data=None):
    """Plot a :class:`BiasVarianceCurve`: the decomposition that adds up, per value.

    Expected loss = bias + net variance: Domingos' bias and net variance (variance on
    unbiased points minus variance on biased ones) for the 0-1 loss, bias² and variance
    for mse. Bands are the 10-90% range of each term over resamples of the bootstrap
    rounds; a dotted line marks a constant predictor. Each term has its own line style
    and marker, so that none hides another where they meet.

    Returns
    -------
    matplotlib.figure.Figure
    """
    fig, (ax,) = _figure(ax, figsize)
    x, labels, log = _x_values(curve.param_range)
    zero_one = curve.results[0].loss == "0-1"
    terms = (("expected_loss", curve.expected_loss, "expected loss", "black", "o", "-", 2.4),
             ("bias", curve.bias_squared, "bias (Domingos)" if zero_one else "bias²",
              "tab:red", "s", "--", 1.6),
             ("net_variance", curve.net_variance,
              "net variance (unbiased − biased)" if zero_one else "variance", "tab:green",
              "^", "-.", 1.6))
    for key, values, name, color, marker, style, width in terms:
        ax.plot(x, values, marker=marker, color=color, linestyle=style, linewidth=width,
                label=name, markerfacecolor="none" if key == "expected_loss" else color)
        band = curve.band(key)
        if np.isfinite(band).all():
            ax.fill_between(x, band[:, 0], band[:, 1], color=color, alpha=0.15, linewidth=0)
    ax.axhline(0.0, color="0.8", linewidth=0.8, zorder=0)
    _baseline(ax, curve.baseline)
    label = param_label(curve.param_name)
    _x_axis(ax, x, labels, log, label)
    ax.set_ylabel("0-1 loss" if zero_one else "squared error")
    sums = "bias + net variance" if zero_one else "bias² + variance"
    ax.set_title(_title(f"Bias and variance over {label}", model, data), fontsize="medium")
    ax.legend(fontsize="small", title=f"expected loss = {sums}\n"
              f"{curve.results[0].n_rounds} bootstrap rounds; bands: 10-90% over "
              f"resampled rounds", title_fontsize="x-small")
    return fig
