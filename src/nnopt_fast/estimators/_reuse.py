"""What an estimator's fits reuse from one call to the next, kept off the estimator itself."""

import weakref
from numbers import Integral

import numpy as np
from sklearn.utils import check_random_state

from ..train.state import TrainState

#: The reused state of each estimator, keyed by the estimator (kept off the estimator, so
#: pickling, cloning, saving and skops never see it, and a copy starts without it).
_REUSED = weakref.WeakKeyDictionary()
#: Training configurations kept per estimator (a ``partial_fit`` stream has one or two
#: batch sizes; more distinct ones start the collection afresh).
_MAX_CONFIGS = 8


class Reused:
    """The objects an estimator's calls build once and reuse while nothing they depend on changes.

    Attributes
    ----------
    passed_params : tuple or None
        The types and values of the parameters that last passed scikit-learn's
        constraints, when all are immutable (see
        :func:`nnopt_fast.estimators._params.check_param_values`).
    net : MLP or None
        The network the estimator trained last; ``coefs_`` and ``intercepts_`` are views
        into its parameter buffer while they are the arrays in ``views``.
    views : tuple of ndarray
        ``net``'s weight views as the estimator received them (coefficients, then
        intercepts).
    state : TrainState or None
        The buffers that trained ``net`` (gradients, optimizer buffers, the backend's
        workspace), for ``state_key``'s optimizer and backend.
    configs : dict
        Training configurations by the values they were made from.

    Notes
    -----
    While ``state`` is kept, its gradients, optimizer buffers and workspace stay
    allocated beside the copies of the optimizer buffers the estimator holds (which it
    saves and pickles): about three parameter vectors and a batch's activations. A fit
    that the next call does not continue lets them go (:meth:`drop_state`).
    """

    def __init__(self):
        self.passed_params = None
        self.net, self.views = None, ()
        self.state, self.state_key = None, None
        self.configs = {}
        self._random_state = None

    # ------------------------------------------------------------------ the network
    def keep_net(self, net):
        """Remember ``net`` and its weight views; returns fresh lists of the views for the
        estimator's ``coefs_`` and ``intercepts_`` (so that rebinding an element of the
        estimator's lists never touches the network's own)."""
        if net is not self.net:
            self.net, self.views = net, (*net.coefs_, *net.intercepts_)
            if self.state is not None and self.state.net is not net:
                self.drop_state()
        return list(net.coefs_), list(net.intercepts_)

    def viewed_net(self, coefs, intercepts):
        """The kept network when ``coefs`` and ``intercepts`` are its views (not copies or
        arrays assigned since), else None."""
        arrays = (*coefs, *intercepts)
        if (self.net is None or len(arrays) != len(self.views)
                or any(a is not b for a, b in zip(arrays, self.views))):
            return None
        return self.net

    def net_for(self, coefs, intercepts, activation, output, dtype):
        """The kept network when ``coefs`` and ``intercepts`` are its views and it has this
        activation, output and dtype; else None."""
        net = self.viewed_net(coefs, intercepts)
        if net is None or (net.activation, net.output, net.dtype) != (activation, output,
                                                                       dtype):
            return None
        return net

    # ------------------------------------------------------------------ training buffers
    def train_state(self, net, cfg, backend, optimizer):
        """A :class:`TrainState` of ``net`` for ``cfg`` holding ``optimizer``'s buffers.

        The kept one when it trained ``net`` with the same optimizer kind and backend and
        ``optimizer`` overwrites every buffer it uses (its gradients are overwritten by
        every step; its backend workspace is reused), else a new one.

        Parameters
        ----------
        net : MLP
        cfg : TrainConfig
        backend : module
        optimizer : OptimizerState
            Loaded into the state (buffers and Adam's step count).
        """
        key = (cfg.optimizer, backend)
        state = self.state
        if (state is None or state.net is not net or self.state_key != key
                or not _overwrites(optimizer, state)):
            state = TrainState(net, cfg)
        optimizer.load_into(state)
        self.state, self.state_key = state, key
        return state

    def drop_state(self):
        """Let the training buffers go (a fit that the next call does not continue: it
        would start a new network, and the buffers would only hold memory)."""
        self.state, self.state_key = None, None

    def config(self, key, make):
        """The configuration made by ``make()`` from the values ``key``, made once."""
        cfg = self.configs.get(key)
        if cfg is None:
            if len(self.configs) >= _MAX_CONFIGS:
                self.configs.clear()
            cfg = self.configs[key] = make()
        return cfg

    # ------------------------------------------------------------------ randomness
    def random_state(self, seed):
        """scikit-learn's ``check_random_state(seed)``.

        For an integer seed, a RandomState in the state ``RandomState(seed)`` starts in:
        the same object each call, seeded again by ``RandomState.seed`` (which sets that
        state without what making a new one costs besides: a bit generator seeded from
        the operating system's entropy, then seeded again from ``seed``).
        """
        if not isinstance(seed, Integral):
            return check_random_state(seed)
        if self._random_state is None:
            self._random_state = np.random.RandomState(seed)
        else:
            self._random_state.seed(seed)
        return self._random_state


def _overwrites(optimizer, state):
    """Whether ``optimizer.load_into(state)`` overwrites every optimizer buffer of ``state``."""
    for name in ("velocity", "m", "v"):
        buf, saved = getattr(state, name), getattr(optimizer, name)
        if buf.size and (saved is None or saved.shape != buf.shape):
            return False
    return True


def reused(est):
    """The :class:`Reused` state of ``est`` (a new one on its first call, and on every
    call of an estimator that cannot be a weak dictionary key: one whose class defines
    ``__eq__`` without ``__hash__``)."""
    try:
        found = _REUSED.get(est)
        if found is None:
            found = _REUSED[est] = Reused()
    except TypeError:
        return Reused()
    return found


def forget(est):
    """Drop what ``est`` reuses (after a failed call, whose buffers are not to be trusted)."""
    try:
        _REUSED.pop(est, None)
    except TypeError:  # not a weak dictionary key: nothing was kept
        pass

