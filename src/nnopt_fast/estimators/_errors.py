"""FitDivergenceError and the advice its message gives, chosen by the cause."""

import numpy as np

from .._validation import all_finite
from ..train.loop import DivergenceError
from ._forward import network
from ._scaling import scaling_report, target_magnitude

#: scikit-learn's first sentence when training ends with non-finite weights; nnopt_fast's
#: errors for the same event start with it, so code that matches scikit-learn's
#: message keeps working.
NONFINITE_MESSAGE = "Solver produced non-finite parameter weights."
#: scikit-learn's second sentence, kept where it is the right advice.
LARGE_VALUES_MESSAGE = "The input data may contain large values and need to be preprocessed."


class FitDivergenceError(DivergenceError, ValueError):
    """Training produced a NaN or infinite loss or weights.

    A :class:`nnopt_fast.DivergenceError` that is also a ``ValueError``, as scikit-learn's
    MLP raises on non-finite weights; the message starts as scikit-learn's does and goes on
    with advice for the cause found (unscaled inputs or targets, or too large a step) and
    with what the estimator now holds: its weights from the start of the failing epoch
    (after the first) when they predict finite values on the training data, else the
    state it had before the call (unfitted after a first ``fit``).

    Attributes
    ----------
    epoch : int or None
        The 1-based epoch that diverged (None for L-BFGS).
    lr : float or None
        The learning rate of that epoch.
    """

    def __init__(self, message, epoch=None, lr=None):
        self.epoch, self.lr, self.loss = epoch, lr, None
        Exception.__init__(self, message)


#: Rows of the training data a fitted model must predict finite values on (an evenly
#: strided subsample, so that the check costs no more than a batch or two).
CHECK_ROWS = 2048


def predicts_finite(est, net, X):
    """Whether ``net``'s weights are finite and predict finite values on (up to
    :data:`CHECK_ROWS` evenly spaced rows of) X, by the estimator's compiled forward pass
    (built once while the estimator holds these weight arrays)."""
    if not all_finite(net.params):
        return False
    rows = np.ascontiguousarray(X[:: -(-X.shape[0] // CHECK_ROWS)])
    forward_pass = network(net.coefs_, net.intercepts_, est.activation, est.out_activation_,
                           owner=est)
    with np.errstate(over="ignore", invalid="ignore"):
        Z = forward_pass(rows, apply_output=False)
    return all_finite(Z)


def divergence_advice(est, X, Y, epoch=None, lr=None):
    """The advice sentence(s) for a divergence of ``est`` trained on (X, Y).

    Unscaled inputs (the :class:`ScalingWarning` cases) and, for a regressor, targets of
    large magnitude are named first: a smaller learning rate does not fix them.
    """
    name = type(est).__name__
    report = scaling_report(X)
    if report:
        return (f"{LARGE_VALUES_MESSAGE} X's columns differ wildly in scale: {report}. "
                f"Standardize them, e.g. make_pipeline(StandardScaler(), {name}()); a "
                f"smaller learning rate does not fix unscaled inputs.")
    if est.out_activation_ == "identity":
        rms = target_magnitude(Y)
        if rms is not None:
            return (f"{LARGE_VALUES_MESSAGE} The targets have a root mean square of "
                    f"{rms:.3g}: scale them, e.g. TransformedTargetRegressor(regressor="
                    f"{name}(), transformer=StandardScaler()).")
    if epoch is None:
        return ("X and y look well scaled: L-BFGS stepped to weights whose loss is not "
                "finite; a larger alpha keeps the weights smaller.")
    return (f"X looks well scaled, so the step was too large: the loss became NaN or "
            f"infinite in epoch {epoch} at a learning rate of {lr:g}; try a smaller "
            f"learning_rate_init (e.g. {est.learning_rate_init / 10:g}).")
