"""The integer codes every backend shares: activations, outputs, optimizers, statuses.

This is the one definition. The C kernels take the same values from ``csrc/nn_codes.h``
(the compiled extension reports the values it was built with, and a test compares them
with these), and the Numba kernels import them from here.
"""

__all__ = ["ACTIVATIONS", "OUTPUTS", "OPTIMIZERS", "STATUS", "code"]

#: Hidden activations, by name.
ACTIVATIONS = {"identity": 0, "tanh": 1, "relu": 2, "logistic": 3}
#: Output layers (activation + loss), by name: softmax + cross-entropy, logistic +
#: binary cross-entropy, identity + squared error, exp + half Poisson deviance.
OUTPUTS = {"softmax": 0, "logistic": 1, "identity": 2, "exp": 3}
#: Optimizers, by name.
OPTIMIZERS = {"sgd": 0, "momentum": 1, "nesterov": 2, "adam": 3}
#: What a compiled epoch returns: ``ok``; ``nonfinite``, a batch loss was NaN or infinite
#: (that batch made no update); ``zero_weight``, a batch's sample weights sum to 0;
#: ``interrupted``, the stop flag was raised (the epoch ended after a whole batch).
STATUS = {"ok": 0, "nonfinite": 1, "zero_weight": 2, "interrupted": 3}


def code(table, value, name):
    """``table[value]``, or a ValueError naming the argument ``name`` and the choices."""
    try:
        return table[value]
    except (KeyError, TypeError):
        raise ValueError(f"{name} must be one of {sorted(table)}, got {value!r}") from None
