#!/usr/bin/env bash
# Portable wheel vs -march=native build: epoch times of the cython backend on W1-W3.
#
# usage: tools/compare_native.sh [--rounds N] [--workloads W1,W2,W3] [--repeats R] [--keep]
#
# Builds two wheels of this tree, the default (portable: target_clones dispatch, no
# -march) and NNOPT_NATIVE=1 (-march=native), installs each into its own venv, then runs
# bench/report.py from each venv in turn, N rounds alternating which goes first, and pools
# the timed epochs. Prints per workload the median seconds per epoch of each build and the
# ratio portable / native; the portable wheel should be within 5% (ratio <= 1.05).
# Run it on a quiet machine: another process on the second core skews a 2-thread run.
#
# Environment: PYTHON (default python3); NNOPT_WHEELHOUSE as in tools/check_wheel.sh (if
# that script has filled it, installs here are offline from it).
set -euo pipefail

ROUNDS=3
WORKLOADS=W1,W2,W3
REPEATS=5
KEEP=0
while [[ $# -gt 0 ]]; do
    case "$1" in
        --rounds) ROUNDS=$2; shift 2 ;;
        --workloads) WORKLOADS=$2; shift 2 ;;
        --repeats) REPEATS=$2; shift 2 ;;
        --keep) KEEP=1; shift ;;
        -h|--help) sed -n '2,16p' "$0"; exit 0 ;;
        *) echo "compare_native.sh: unknown argument '$1' (try --help)" >&2; exit 2 ;;
    esac
done

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PY=${PYTHON:-python3}
WHEELHOUSE=${NNOPT_WHEELHOUSE:-${XDG_CACHE_HOME:-$HOME/.cache}/nnopt_fast/wheelhouse}
WORK=$(mktemp -d "${TMPDIR:-/tmp}/nnopt_compare_native.XXXXXX")
cleanup() {
    if [[ $KEEP == 1 ]]; then echo "work directory kept: $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
mkdir -p "$WORK/run"

if compgen -G "$WHEELHOUSE/.filled-*" > /dev/null; then
    # Same pins as check_wheel.sh: the host's tested versions, build tools left free.
    "$PY" -m pip freeze --exclude-editable 2>/dev/null | grep -v ' @ ' \
        | grep -v -i -E '^(pip|setuptools|wheel|nnopt[-_]fast)==' > "$WORK/constraints.txt" \
        || true
    export PIP_NO_INDEX=1 PIP_FIND_LINKS="$WHEELHOUSE" PIP_CONSTRAINT="$WORK/constraints.txt"
    echo "installing offline from $WHEELHOUSE"
fi

"$PY" -m venv --without-pip "$WORK/venv-tools"
"$PY" -m pip --python "$WORK/venv-tools/bin/python" install -q build

for kind in portable native; do
    echo "== build and install the $kind wheel"
    native=0
    [[ $kind == native ]] && native=1
    # The wheel is built from a fresh sdist (build's default), never in the source tree:
    # a build/ directory left there by one build could hand its objects to the other.
    NNOPT_NATIVE=$native "$WORK/venv-tools/bin/python" -m build \
        --outdir "$WORK/dist-$kind" "$REPO" > "$WORK/build-$kind.log" 2>&1 \
        || { tail -30 "$WORK/build-$kind.log"; echo "FAIL: $kind build" >&2; exit 1; }
    # The compiler lines in the log prove which flags each build really used.
    if grep -q -- '-march=native' "$WORK/build-$kind.log"; then used=1; else used=0; fi
    if [[ $used != "$native" ]]; then
        echo "FAIL: the $kind build's compiler flags do not match NNOPT_NATIVE=$native" >&2
        exit 1
    fi
    "$PY" -m venv --without-pip "$WORK/venv-$kind"
    "$PY" -m pip --python "$WORK/venv-$kind/bin/python" install -q --no-compile \
        "$WORK"/dist-$kind/*.whl
    (cd "$WORK/run" && "$WORK/venv-$kind/bin/python" -c \
        "import nnopt_fast as nf; print('$kind:', nf.backends()['cython'].get('simd'),
                                           nf.__file__)")
done

for ((round = 1; round <= ROUNDS; round++)); do
    # Alternate which build goes first, so neither always runs on a cooler machine.
    if ((round % 2)); then order="portable native"; else order="native portable"; fi
    for kind in $order; do
        echo "== round $round/$ROUNDS: $kind"
        (cd "$WORK/run" && "$WORK/venv-$kind/bin/python" "$REPO/bench/report.py" \
            --workloads "$WORKLOADS" --repeats "$REPEATS" --runners cython \
            --no-cold-start --quiet --json "$WORK/$kind-$round.json" > /dev/null)
    done
done

"$PY" - "$WORK" "$ROUNDS" "$WORKLOADS" <<'EOF'
import json
import statistics
import sys
from pathlib import Path

work, rounds, workloads = Path(sys.argv[1]), int(sys.argv[2]), sys.argv[3].split(",")
pooled = {kind: {w: [] for w in workloads} for kind in ("portable", "native")}
for kind in pooled:
    for r in range(1, rounds + 1):
        res = json.loads((work / f"{kind}-{r}.json").read_text())["results"]
        for w in workloads:
            pooled[kind][w] += res[w]["times"]["cython"]
print()
print("| workload | portable wheel s/epoch | -march=native s/epoch | portable / native |")
print("|---|---|---|---|")
worst = 0.0
for w in workloads:
    p, n = statistics.median(pooled["portable"][w]), statistics.median(pooled["native"][w])
    worst = max(worst, p / n)
    print(f"| {w} | {p:.4f} | {n:.4f} | {p / n:.3f} |")
count = len(pooled["portable"][workloads[0]])
print(f"\nmedians of {count} epochs per build and workload; worst ratio {worst:.3f} "
      f"({'within' if worst <= 1.05 else 'NOT within'} 5%)")
EOF
