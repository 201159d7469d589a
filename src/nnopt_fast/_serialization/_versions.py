"""The version stamp every model file carries."""

import platform


def versions():
    """The nnopt_fast, numpy and scikit-learn (and Python) versions writing a file."""
    import numpy
    import sklearn

    from .. import __version__

    return {"nnopt_fast": __version__, "numpy": numpy.__version__,
            "scikit-learn": sklearn.__version__, "python": platform.python_version()}
