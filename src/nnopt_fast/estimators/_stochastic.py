"""The stochastic solvers ("sgd", "adam"): scikit-learn's epochs on nnopt_fast's epoch driver."""

import warnings

import numpy as np
from sklearn.base import is_classifier
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split

from ..kernels import get_backend
from ..train.loop import DivergenceError, make_config, run_epochs
from ..train.schedules import NoImprovement, make_schedule
from ..train.state import OptimizerState
from ._forward import as_rows, data_loss, forward
from ._reuse import reused
from ._threads import fit_threads

STOCHASTIC_SOLVERS = ("sgd", "adam")


def optimizer_kind(est):
    """The kernels' optimizer for the estimator's solver and momentum settings."""
    if est.solver == "adam":
        return "adam"
    if est.momentum == 0:
        # scikit-learn's SGD with momentum 0 (Nesterov or not) is the plain step.
        return "sgd"
    return "nesterov" if est.nesterovs_momentum else "momentum"


def _batch_size(est, n_samples):
    if est.batch_size == "auto":
        return min(200, n_samples)
    if est.batch_size > n_samples:
        warnings.warn("Got `batch_size` less than 1 or larger than sample size. It is going "
                      "to be clipped")
    return int(np.clip(est.batch_size, 1, n_samples))


def _split(est, X, codes, sw):
    """Training arrays ``(X, T, sw)`` and, with early stopping, the validation split.

    The split is scikit-learn's: the same ``train_test_split`` call on the same
    RandomState, stratified for single-output classification.
    """
    if not est.early_stopping:
        return (X, est._kernel_targets(codes, X.dtype), sw), None
    stratify = None
    if is_classifier(est) and est.n_outputs_ == 1:
        # scikit-learn stratifies on its binarized (n, 1) bool targets: the same split,
        # and the same message when a class is too small to split.
        stratify = (codes == 1).reshape(-1, 1)
    arrays = (X, codes) if sw is None else (X, codes, sw)
    split = train_test_split(*arrays, random_state=est._random_state,
                             test_size=est.validation_fraction, stratify=stratify)
    X_train, X_val, codes_train, codes_val = split[:4]
    sw_train, sw_val = (None, None) if sw is None else split[4:]
    if X_val.shape[0] < 2:
        raise ValueError("The validation set is too small. Increase 'validation_fraction' "
                         "or the size of your dataset.")
    val = (X_val, est._val_truth(codes_val), est._kernel_targets(codes_val, X.dtype), sw_val)
    train = (as_rows(X_train), est._kernel_targets(codes_train, X.dtype), sw_train)
    return train, val


def _stopping_rule(est, net, val):
    """scikit-learn's no-improvement rule on the training loss or the validation score."""
    if val is None:
        return NoImprovement(est.tol, est.n_iter_no_change, best=est.best_loss_,
                             count=est._no_improvement_count, verbose=est.verbose)
    X_val, truth, T_val, sw_val = val

    def score():
        # Weights on their way to a divergence overflow here: the NaN score reports it.
        with np.errstate(over="ignore", invalid="ignore"):
            Z = forward(net.coefs_, net.intercepts_, X_val, est.activation, est.n_threads)
        est.validation_loss_curve_.append(
            data_loss(est.out_activation_, Z, T_val, sw_val, est.n_outputs_))
        value = est._val_score(Z, truth, sw_val)
        est.validation_scores_.append(value)
        if est.verbose:
            print("Validation score: %f" % value)
        return value

    def keep_best():
        est._best_params = net.params.copy()

    return NoImprovement(est.tol, est.n_iter_no_change, best=est.best_validation_score_,
                         count=est._no_improvement_count, score=score, on_best=keep_best,
                         verbose=est.verbose)


def shuffled(order, random_state):
    """``order`` in a random order: ``sklearn.utils.shuffle(order, random_state=...)``.

    scikit-learn shuffles ``np.arange(n)`` in place with ``random_state.shuffle`` and
    indexes ``order`` with it; ``random_state.permutation(n)`` is that draw.
    """
    return order[random_state.permutation(order.shape[0])]


def _config(est, net, kind, batch_size, n_samples, dropout):
    """The :class:`TrainConfig` of a call, made once for each set of values it is made of."""
    n_threads = fit_threads(est.n_threads)
    values = (net.layer_sizes, net.activation, net.output, batch_size, n_samples, kind,
              est.momentum, est.beta_1, est.beta_2, est.epsilon, est.alpha, est.l1,
              est.l1_method, dropout, est._dropout_seed or 0, n_threads, est.parallel)
    return reused(est).config(values, lambda: make_config(
        net, batch_size=batch_size, n_samples=n_samples, optimizer=kind,
        momentum=est.momentum, beta1=est.beta_1, beta2=est.beta_2, epsilon=est.epsilon,
        l2=est.alpha, l1=est.l1, l1_method=est.l1_method, penalty_div=0, dropout=dropout,
        seed=est._dropout_seed or 0, n_threads=n_threads, parallel=est.parallel))


def fit_stochastic(est, net, X, codes, sw, dropout, incremental):
    """Train ``net`` (the estimator's weights) with sgd or adam, as scikit-learn does.

    Returns the :class:`DivergenceError` that stopped an early-stopping fit (whose best
    validation weights ``net`` then holds), else None. Without early stopping a
    divergence propagates.
    """
    kind = optimizer_kind(est)
    if not incremental or est._optimizer is None or est._optimizer.kind != kind:
        est._optimizer = OptimizerState(kind, est.learning_rate_init)
    if est.early_stopping and incremental:
        raise ValueError("partial_fit does not support early_stopping=True")
    train, val = _split(est, X, codes, sw)
    X_train, T_train, sw_train = train
    n_samples = X_train.shape[0]
    if np.any(np.asarray(dropout) > 0) and est._dropout_seed is None:
        est._dropout_seed = int(est._random_state.randint(0, 2**31 - 1))
    cfg = _config(est, net, kind, _batch_size(est, n_samples), n_samples, dropout)
    backend = get_backend(est.backend)
    est.backend_ = getattr(backend, "BACKEND_NAME", est.backend)
    state = reused(est).train_state(net, cfg, backend, est._optimizer)
    state.step = est._dropout_step
    # Adam has no schedule in scikit-learn: its learning_rate parameter applies to sgd.
    schedule = make_schedule(est.learning_rate if kind != "adam" else "constant",
                             est.learning_rate_init, power_t=est.power_t,
                             samples_seen=est.t_, rate=est._optimizer.learning_rate)
    stopping = _stopping_rule(est, net, val)

    def on_epoch(epoch, loss, seconds):
        _record_epoch(est, loss, n_samples)
        if est.verbose:
            print("Iteration %d, loss = %.8f" % (est.n_iter_, est.loss_))
        return False

    if est.shuffle:
        def reorder(order):
            return shuffled(order, est._random_state)
    else:
        def reorder(order):
            return order

    est.n_iter_ = 0
    diverged = None
    try:
        run_epochs(backend, cfg, state, X_train, T_train, sw_train,
                   epochs=1 if incremental else est.max_iter, lr=schedule, reorder=reorder,
                   on_epoch=on_epoch, stopping=stopping,
                   data_div=est.n_outputs_ if est.out_activation_ == "identity" else 1)
    except KeyboardInterrupt:
        warnings.warn("Training interrupted by user.")
    except DivergenceError as err:
        if val is None:
            raise
        diverged = err
    finally:
        est._optimizer.save_from(state)
        est._optimizer.learning_rate = schedule.rate
        est._dropout_step = state.step
        est._no_improvement_count = stopping.count
        if val is None:
            est.best_loss_ = stopping.best
        else:
            est.best_validation_score_ = stopping.best
        if not (incremental or est.warm_start):
            reused(est).drop_state()
    if diverged is not None:
        _record_divergence(est, diverged, n_samples)
    elif not incremental and not stopping.stopped and est.n_iter_ == est.max_iter:
        warnings.warn("Stochastic Optimizer: Maximum iterations (%d) reached and the "
                      "optimization hasn't converged yet." % est.max_iter, ConvergenceWarning)
    if est.early_stopping:
        net.params[...] = est._best_params
    return diverged


def _record_epoch(est, loss, n_samples):
    est.n_iter_ += 1
    est.loss_ = loss
    est.t_ += n_samples
    est.loss_curve_.append(loss)


def _record_divergence(est, err, n_samples):
    """Book the epoch that diverged under early stopping, which then ends training.

    Its loss is the non-finite one and its validation score NaN, as in scikit-learn,
    which trains on through the remaining epochs of NaN weights; this stops at once.
    """
    _record_epoch(est, float(err.loss), n_samples)
    est.validation_scores_.append(np.nan)
    est.validation_loss_curve_.append(np.nan)
