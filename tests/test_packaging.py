"""Packaging: pyproject metadata, cibuildwheel selection, sdist contents and backend report."""

import fnmatch
import importlib
import re
import tomllib
from pathlib import Path

import pytest

import nnopt_fast as nf

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def pyproject():
    with open(REPO / "pyproject.toml", "rb") as f:
        return tomllib.load(f)


@pytest.fixture(scope="module")
def cibw(pyproject):
    return pyproject["tool"]["cibuildwheel"]


def _names(requirements):
    """Distribution names of PEP 508 requirement strings, lower case."""
    return {re.match(r"[A-Za-z0-9_.-]+", r).group(0).lower() for r in requirements}


def test_runtime_dependencies(pyproject):
    project = pyproject["project"]
    assert project["name"] == "nnopt_fast"
    assert project["requires-python"] == ">=3.10"
    assert {"numpy", "scipy", "numba", "scikit-learn", "threadpoolctl", "pandas"} <= _names(
        project["dependencies"])


def test_extras(pyproject):
    extras = pyproject["project"]["optional-dependencies"]
    assert {"pytest", "hypothesis"} <= _names(extras["test"])
    assert "torch" in _names(extras["bench"])


def test_build_requirements(pyproject):
    # The .pyx needs Cython, the extension numpy's headers and scipy's cython_blas.
    assert {"setuptools", "cython", "numpy", "scipy"} <= _names(
        pyproject["build-system"]["requires"])


def test_console_script_resolves(pyproject):
    target = pyproject["project"]["scripts"]["nnopt-fast"]
    module, func = target.split(":")
    assert callable(getattr(importlib.import_module(module), func))


def test_wheels_exclude_sources_in_every_package(pyproject):
    # Keyed by one package name, setuptools would apply the exclusion to that package only
    # and ship nnopt_fast/kernels/_cython.pyx in the wheel; "*" covers every package.
    excluded = pyproject["tool"]["setuptools"]["exclude-package-data"]
    patterns = excluded.get("*", []) + excluded.get("", [])
    assert {"*.c", "*.pyx", "*.pxd", "*.pxi"} <= set(patterns)


def test_cibuildwheel_keys(cibw):
    assert {"build", "skip", "test-command", "test-extras"} <= set(cibw)
    assert {"linux", "macos", "windows"} <= set(cibw)
    assert "smoke_test.py" in cibw["test-command"]
    assert (REPO / "tools" / "smoke_test.py").is_file()


def test_cibuildwheel_test_extras_exist(pyproject, cibw):
    assert set(cibw["test-extras"]) <= set(pyproject["project"]["optional-dependencies"])


def test_cibuildwheel_platform_settings(cibw):
    assert cibw["linux"]["repair-wheel-command"].startswith("auditwheel repair")
    assert cibw["linux"]["manylinux-x86_64-image"] == "manylinux_2_28"
    assert cibw["macos"]["environment"]["MACOSX_DEPLOYMENT_TARGET"] == "12.0"
    # The extension links no OpenMP runtime, so nothing needs vendoring on Windows.
    assert cibw["windows"]["archs"] == ["AMD64"]
    assert "repair-wheel-command" not in cibw["windows"]


def _selected(cibw, identifier):
    """cibuildwheel's rule: built when a ``build`` selector matches and no ``skip`` one does."""
    return (any(fnmatch.fnmatch(identifier, p) for p in cibw["build"])
            and not any(fnmatch.fnmatch(identifier, p) for p in cibw["skip"]))


@pytest.mark.parametrize("identifier", [
    "cp310-manylinux_x86_64", "cp311-manylinux_x86_64", "cp312-manylinux_aarch64",
    "cp313-win_amd64", "cp314-macosx_arm64", "cp315-manylinux_x86_64",
])
def test_cibuildwheel_builds_numba_supported_pythons(cibw, identifier):
    assert _selected(cibw, identifier)


@pytest.mark.parametrize("identifier", [
    "cp39-manylinux_x86_64",      # older than requires-python and numba 0.68
    "cp314t-manylinux_x86_64",    # free-threaded: no numba wheels
    "pp311-manylinux_x86_64",     # PyPy: numba is CPython-only
    "cp312-musllinux_x86_64",     # no numba/llvmlite musllinux wheels
    "cp312-win32", "cp312-manylinux_i686",  # 32-bit: no numba wheels
    "cp312-macosx_x86_64",        # numba 0.68 ships arm64 macOS wheels only
])
def test_cibuildwheel_skips_unsupported(cibw, identifier):
    assert not _selected(cibw, identifier)


def _manifest_files(candidates):
    """Apply MANIFEST.in's directives, in order, to ``candidates`` (paths relative to REPO).

    Implements the directives this project's MANIFEST.in uses, with setuptools' meaning:
    ``include``/``exclude`` match anchored paths, ``recursive-*`` match file names under a
    directory, ``global-exclude`` file names anywhere, ``prune`` a whole directory.
    """
    kept = set()
    for raw in (REPO / "MANIFEST.in").read_text().splitlines():
        words = raw.split("#", 1)[0].split()
        if not words:
            continue
        cmd, args = words[0], words[1:]
        if cmd == "include":
            kept |= {c for c in candidates if any(fnmatch.fnmatch(c, p) for p in args)}
        elif cmd == "exclude":
            kept = {c for c in kept if not any(fnmatch.fnmatch(c, p) for p in args)}
        elif cmd == "recursive-include":
            under = {c for c in candidates if c.startswith(args[0].rstrip("/") + "/")}
            kept |= {c for c in under if any(fnmatch.fnmatch(Path(c).name, p) for p in args[1:])}
        elif cmd == "global-exclude":
            kept = {c for c in kept if not any(fnmatch.fnmatch(Path(c).name, p) for p in args)}
        elif cmd == "prune":
            kept = {c for c in kept if not c.startswith(args[0].rstrip("/") + "/")}
        else:
            raise AssertionError(f"MANIFEST.in uses {cmd!r}, which this test does not model")
    return kept


def test_sdist_carries_extension_sources():
    sources = sorted(p.relative_to(REPO).as_posix()
                     for pattern in ("csrc/*.c", "csrc/*.h", "src/nnopt_fast/**/*.pyx",
                                     "src/nnopt_fast/**/*.pxd", "src/nnopt_fast/**/*.pxi")
                     for p in REPO.glob(pattern))
    assert any(s.endswith(".pyx") for s in sources)
    assert any(s.startswith("csrc/") and s.endswith(".c") for s in sources)
    generated = "src/nnopt_fast/kernels/_cython.c"
    kept = _manifest_files(set(sources) | {generated, "tests/tolerances.py",
                                           "tools/smoke_test.py"})
    assert set(sources) <= kept
    assert {"tests/tolerances.py", "tools/smoke_test.py"} <= kept
    # Cython output is regenerated by every build; a shipped copy could be stale.
    assert generated not in kept


def _cpu_simd_level():
    """The best target_clones variant this CPU supports, from /proc/cpuinfo's flags."""
    flags = set()
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("flags"):
            flags = set(line.split(":", 1)[1].split())
            break
    v4 = {"avx512f", "avx512bw", "avx512cd", "avx512dq", "avx512vl"}
    return "x86-64-v4" if v4 <= flags else "avx2" if "avx2" in flags else "default"


def test_backends_report_dispatch_path_and_blas():
    info = nf.backends()
    assert list(info) == ["cython", "numba", "numpy"]
    assert all(info[name]["available"] for name in info), info
    cython = info["cython"]
    expected = (_cpu_simd_level() if Path("/proc/cpuinfo").is_file()
                else cython["simd"])
    assert cython["simd"] in ("x86-64-v4", "avx2", "default")
    assert cython["simd"] == expected
    assert isinstance(cython["blas"], str) and "blas" in cython["blas"].lower()
    assert "threads of their own" in cython["threads"]
