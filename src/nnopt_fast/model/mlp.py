"""The MLP model: parameters in one contiguous buffer, prediction and loss."""

import numbers

import numpy as np

from .._validation import check_choice, check_dtype, check_scalar, check_targets, check_X
from ..kernels import reference as ref
from ..kernels.inference import Network


class MLP:
    """A fully connected network whose parameters live in one contiguous buffer.

    Parameters
    ----------
    layer_sizes : sequence of int
        ``[n_in, h_1, ..., n_out]``, at least two entries, all >= 1.
    activation : {"tanh", "relu", "logistic", "identity"}, default="tanh"
        Hidden-layer activation.
    output : {"softmax", "logistic", "identity"}, default="softmax"
        Output layer: softmax + cross-entropy, logistic + binary cross-entropy, or
        identity + squared error.
    dtype : float32 or float64, default=float32
    random_state : int, numpy.random.RandomState or None
        Seeds the Glorot-uniform initialization, drawn exactly as scikit-learn's MLP
        does (coefficients then intercepts, layer by layer, bound
        ``sqrt(f / (n_in + n_out))`` with ``f = 2`` for logistic hidden units, else 6).

    Attributes
    ----------
    params : ndarray of shape (n_params,)
        All parameters: ``W_1, b_1, W_2, b_2, ...``, each C-ordered.
    coefs_ : list of ndarray
        ``coefs_[l]`` of shape (layer_sizes[l], layer_sizes[l+1]), views into ``params``.
    intercepts_ : list of ndarray
        ``intercepts_[l]`` of shape (layer_sizes[l+1],), views into ``params``.
    """

    def __init__(self, layer_sizes, activation="tanh", output="softmax", dtype=np.float32,
                 random_state=None):
        sizes = _check_layer_sizes(layer_sizes)
        self.activation = check_choice(activation, "activation", ref.ACTIVATIONS)
        self.output = check_choice(output, "output", ref.OUTPUTS)
        self.dtype = check_dtype(dtype)
        self.layer_sizes = sizes
        self._allocate()
        self.initialize(random_state)

    @classmethod
    def from_weights(cls, coefs, intercepts, activation="tanh", output="softmax", dtype=None):
        """Build a model from given weights (copied into the model's buffer).

        Parameters
        ----------
        coefs : list of array of shape (n_in_l, n_out_l)
        intercepts : list of array of shape (n_out_l,)
        activation, output : str
        dtype : float32, float64 or None
            None keeps the dtype of ``coefs[0]`` if it is float32/float64, else float64.
        """
        coefs = [np.asarray(W) for W in coefs]
        intercepts = [np.asarray(b) for b in intercepts]
        if len(coefs) == 0 or len(coefs) != len(intercepts):
            raise ValueError("coefs and intercepts must be non-empty lists of the same length")
        sizes = [coefs[0].shape[0] if coefs[0].ndim == 2 else -1]
        for i, (W, b) in enumerate(zip(coefs, intercepts)):
            if W.ndim != 2 or W.shape[0] != sizes[-1]:
                raise ValueError(f"coefs[{i}] has shape {W.shape}; expected ({sizes[-1]}, n_out)")
            if b.shape != (W.shape[1],):
                raise ValueError(f"intercepts[{i}] has shape {b.shape}; expected ({W.shape[1]},)")
            sizes.append(W.shape[1])
        if dtype is None:
            dtype = coefs[0].dtype if coefs[0].dtype in (np.float32, np.float64) else np.float64
        net = cls.__new__(cls)
        net.activation = check_choice(activation, "activation", ref.ACTIVATIONS)
        net.output = check_choice(output, "output", ref.OUTPUTS)
        net.dtype = check_dtype(dtype)
        net.layer_sizes = _check_layer_sizes(sizes)
        net._allocate()
        net.set_weights(coefs, intercepts)
        return net

    # ------------------------------------------------------------------ layout
    def _allocate(self):
        shapes = []
        for n_in, n_out in zip(self.layer_sizes[:-1], self.layer_sizes[1:]):
            shapes += [(n_in, n_out), (n_out,)]
        self._shapes = shapes
        self._compiled = None
        self.params = np.zeros(sum(int(np.prod(s)) for s in shapes), dtype=self.dtype)
        self.coefs_, self.intercepts_ = self._views(self.params)

    def _views(self, buf):
        """Split a flat buffer laid out like ``params`` into (coefs, intercepts) views."""
        coefs, intercepts, off = [], [], 0
        for i, s in enumerate(self._shapes):
            n = int(np.prod(s))
            v = buf[off : off + n].reshape(s)
            (coefs if i % 2 == 0 else intercepts).append(v)
            off += n
        return coefs, intercepts

    @property
    def n_layers(self):
        """Number of weight layers (hidden layers + 1)."""
        return len(self.layer_sizes) - 1

    @property
    def n_params(self):
        return self.params.size

    def initialize(self, random_state=None):
        """Re-draw the weights with scikit-learn's Glorot-uniform scheme."""
        rs = _random_state(random_state)
        factor = 2.0 if self.activation == "logistic" else 6.0
        for W, b in zip(self.coefs_, self.intercepts_):
            bound = np.sqrt(factor / (W.shape[0] + W.shape[1]))
            W[...] = rs.uniform(-bound, bound, W.shape)
            b[...] = rs.uniform(-bound, bound, b.shape)
        return self

    def set_weights(self, coefs, intercepts):
        """Copy weights into the model's buffer (shapes must match)."""
        if len(coefs) != self.n_layers or len(intercepts) != self.n_layers:
            raise ValueError(f"expected {self.n_layers} coefs and intercepts")
        for i, (W, b, Wd, bd) in enumerate(zip(coefs, intercepts, self.coefs_, self.intercepts_)):
            W = np.asarray(W)
            b = np.asarray(b)
            if W.shape != Wd.shape:
                raise ValueError(f"coefs[{i}] has shape {W.shape}; expected {Wd.shape}")
            if b.shape != bd.shape:
                raise ValueError(f"intercepts[{i}] has shape {b.shape}; expected {bd.shape}")
            if not (np.isfinite(W).all() and np.isfinite(b).all()):
                raise ValueError(f"coefs[{i}] or intercepts[{i}] contains NaN or infinity")
            Wd[...] = W
            bd[...] = b
        return self

    def copy(self):
        """A deep copy of the model."""
        return MLP.from_weights(self.coefs_, self.intercepts_, self.activation, self.output,
                                self.dtype)

    # ------------------------------------------------------------------ inference
    def _network(self):
        """The compiled forward pass of this model, built on first use (it reads the
        weights in place, so training in between needs no rebuild)."""
        key = (self.activation, self.output)
        cached = getattr(self, "_compiled", None)
        if cached is None or cached[0] != key:
            cached = (key, Network(self.coefs_, self.intercepts_, *key))
            self._compiled = cached
        return cached[1]

    def _run(self, X, apply_output):
        Xc = check_X(X, self.dtype, n_features=self.layer_sizes[0], finite=False)
        return self._network()(Xc, apply_output)

    def forward(self, X):
        """Output-layer activations for X (softmax probabilities, sigmoids or values).

        Runs the compiled forward pass (block by block, the GIL released).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_in)

        Returns
        -------
        ndarray of shape (n_samples, n_out), model dtype

        Raises
        ------
        ValueError
            If X holds NaN or infinity, or has the wrong number of features.
        """
        return self._run(X, True)

    def predict(self, X):
        """Predictions: class indices (softmax), 0/1 labels (logistic) or values (identity).

        Returns
        -------
        ndarray of shape (n_samples,) when the model has one output (or softmax),
        else (n_samples, n_out).
        """
        F = self.forward(X)
        if self.output == "softmax":
            return F.argmax(axis=1)
        if self.output == "logistic":
            F = (F > 0.5).astype(np.int64)
        return F[:, 0] if F.shape[1] == 1 else F

    def predict_proba(self, X):
        """Class probabilities (softmax or logistic outputs), shape (n_samples, n_out)."""
        if self.output == "identity":
            raise ValueError("predict_proba needs a softmax or logistic output; this model's "
                             "output is 'identity'")
        return self.forward(X)

    def loss(self, X, y, l2=0.0, l1=0.0, sample_weight=None):
        """The cost ``J = mean_i L_i + l2/(2m) sum ||W||^2 + l1/(2m) sum |W|`` with m = len(X).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_in)
        y : array-like
            Integer labels (softmax) or targets (logistic 0/1, identity values).
        l2, l1 : float >= 0
        sample_weight : array-like of shape (n_samples,) or None
            Weighted mean of the data term; the penalty still uses m = len(X).

        Returns
        -------
        float
        """
        from .._validation import check_sample_weight

        l2 = check_scalar(l2, "l2", low=0.0)
        l1 = check_scalar(l1, "l1", low=0.0)
        Xc = check_X(X, self.dtype, n_features=self.layer_sizes[0])
        m = Xc.shape[0]
        if m == 0:
            raise ValueError("X must have at least one sample")
        T = check_targets(y, self.output, self.layer_sizes[-1], m, self.dtype)
        sw = check_sample_weight(sample_weight, m, self.dtype)
        Z = self._network()(Xc, False)
        total = ref.output_loss(self.output, Z, T, sw, np.empty_like(Z))
        S = float(m) if sw is None else float(sw.sum(dtype=np.float64))
        return total / S + ref.penalty(self.coefs_, l2, l1, m)

    def __repr__(self):
        return (f"MLP({list(self.layer_sizes)}, activation={self.activation!r}, "
                f"output={self.output!r}, dtype={self.dtype.name})")

    def __getstate__(self):
        return {"layer_sizes": self.layer_sizes, "activation": self.activation,
                "output": self.output, "dtype": self.dtype.str, "params": self.params}

    def __setstate__(self, st):
        self._compiled = None
        self.activation, self.output = st["activation"], st["output"]
        self.dtype = np.dtype(st["dtype"])
        self.layer_sizes = tuple(st["layer_sizes"])
        self._allocate()
        self.params[...] = st["params"]


def _random_state(seed):
    """scikit-learn's ``check_random_state`` rule, without importing scikit-learn."""
    if seed is None:
        return np.random.mtrand._rand
    if isinstance(seed, np.random.RandomState):
        return seed
    if isinstance(seed, numbers.Integral) and not isinstance(seed, bool):
        return np.random.RandomState(seed)
    raise TypeError(f"random_state must be None, an int or a numpy RandomState, got {seed!r}")


def _check_layer_sizes(layer_sizes):
    try:
        sizes = tuple(layer_sizes)
    except TypeError:
        raise TypeError(f"layer_sizes must be a sequence of ints, got {layer_sizes!r}") from None
    if len(sizes) < 2:
        raise ValueError(f"layer_sizes needs at least [n_in, n_out], got {list(sizes)}")
    return tuple(check_scalar(s, "layer_sizes entries", kind="int", low=1) for s in sizes)
