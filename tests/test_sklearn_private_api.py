"""The scikit-learn private names nnopt_fast uses: all declared, all present, all bounded."""

import ast
import importlib
import pathlib
import re
import tomllib

import sklearn.base

from nnopt_fast.estimators._base import SKLEARN_PRIVATE_API

PACKAGE = pathlib.Path(__file__).resolve().parents[1] / "src" / "nnopt_fast"
PYPROJECT = PACKAGE.parents[1] / "pyproject.toml"
#: Private methods nnopt_fast's estimators inherit from scikit-learn's base classes.
_INHERITED = {name for cls in (sklearn.base.BaseEstimator, sklearn.base.ClassifierMixin,
                               sklearn.base.RegressorMixin)
              for name in dir(cls) if name.startswith("_") and not name.startswith("__")}


def _private_uses():
    """Every private scikit-learn name the package's source imports or calls."""
    found = set()
    for path in PACKAGE.rglob("*.py"):
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("sklearn"):
                private_module = any(p.startswith("_") for p in node.module.split("."))
                for alias in node.names:
                    if private_module or alias.name.startswith("_"):
                        found.add(f"{node.module}.{alias.name}")
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.name.startswith("sklearn") and "._" in alias.name:
                        found.add(alias.name)
            elif isinstance(node, ast.Attribute) and node.attr in _INHERITED:
                found.add(f"sklearn.base.BaseEstimator.{node.attr}")
    return found


def test_every_private_name_is_declared():
    assert _private_uses() == set(SKLEARN_PRIVATE_API)


def _resolve(dotted):
    """The object a dotted name ``package.module.Class.attr`` names."""
    parts = dotted.split(".")
    for i in range(len(parts) - 1, 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:i]))
        except ImportError:
            continue
        for attr in parts[i:]:
            obj = getattr(obj, attr)
        return obj
    raise ImportError(dotted)


def test_every_declared_name_exists_in_this_scikit_learn():
    for dotted in SKLEARN_PRIVATE_API:
        assert callable(_resolve(dotted)), dotted


def test_scikit_learn_has_an_upper_bound():
    deps = tomllib.loads(PYPROJECT.read_text())["project"]["dependencies"]
    (spec,) = [d for d in deps if re.match(r"scikit-learn\b", d)]
    upper = re.search(r"<\s*([\d.]+)", spec)
    assert upper, spec
    installed = tuple(int(p) for p in sklearn.__version__.split(".")[:2])
    assert installed < tuple(int(p) for p in upper[1].split(".")[:2])
