"""Docstring sections the two estimators share."""

PARAMS = """dropout : float in [0, 1) or sequence of float, default=0.0
        Drop probability of the hidden units (inverted dropout, one value for every hidden
        layer or one per hidden layer). Nothing is dropped at predict time. Not available
        with ``solver="lbfgs"``.
    l1 : float >= 0, default=0.0
        L1 strength with ``alpha``'s per-batch meaning: the penalty of a batch of sample
        weight S is ``(alpha/2 ||W||^2 + l1/2 |W|_1) / S``.
    l1_method : {"subgradient", "proximal"}, default="subgradient"
        ``"proximal"`` soft-thresholds the weights after each step and gives exact zeros
        (sgd / adam only; lbfgs uses the subgradient).
    n_threads : int >= 1, -1 or None, default=None
        Threads of one training step. ``None`` picks: 1 inside a joblib worker (for example
        ``GridSearchCV(n_jobs=2)`` or ``cross_val_score(n_jobs=2)``, whose workers already
        occupy the other cores), else ``OMP_NUM_THREADS`` if set (joblib's process workers
        and Dask's workers set it), else all available cores. ``-1`` is every available
        core (the affinity mask); more than that is clamped, with a warning. While
        training, BLAS pools are held to this number. Prediction on many rows splits
        them among at most this many threads (fewer under a ``threadpool_limits`` of
        BLAS), with the same result on any number.
    parallel : {"sync", "hogwild"}, default="sync"
        With ``n_threads > 1``: deterministic data-parallel steps, or lock-free Hogwild.
    backend : {"auto", "cython", "numba", "numpy"}, default="auto"
        The kernels of the stochastic solvers; lbfgs evaluates its loss and gradient with
        the NumPy reference kernels."""

NOTES = """Training runs on nnopt_fast's kernels; with the same starting weights,
    ``shuffle=False`` and float64 data it follows scikit-learn's updates to rounding error,
    and an equal ``random_state`` gives scikit-learn's initial weights, validation split and
    batch order. scipy.sparse input (CSR, CSC) is never densified: every solver's first
    layer, and prediction's, multiplies its non-zeros (CSC is converted to CSR once per
    call), to the dense results up to rounding. ``fit`` emits a
    :class:`ScalingWarning` when X's columns differ wildly in scale or are far from unit
    scale.

    A NaN or infinite training loss raises :class:`FitDivergenceError` (a ``ValueError``
    whose message starts as scikit-learn's "Solver produced non-finite parameter
    weights." and names the likely cause). After any error in ``fit`` or ``partial_fit``
    the estimator keeps the state it had before the call, or, after a divergence, its
    weights from the start of the failing epoch when these predict finite values on the
    training data: it never holds a model that predicts NaN. With
    ``early_stopping=True`` a divergence ends training instead, with a
    ``ConvergenceWarning``, and the estimator keeps its best validation weights, as
    scikit-learn does.

    ``est.save(path)`` / ``nnopt_fast.load(path)`` store the model without pickle, and
    ``nnopt_fast.save(pipeline, path)`` a whole Pipeline; pickle and joblib work too."""


def fill(cls):
    """Put the shared sections into ``cls``'s docstring."""
    cls.__doc__ = cls.__doc__.format(params=PARAMS, notes=NOTES)
    return cls
