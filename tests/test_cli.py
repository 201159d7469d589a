"""The ``nnopt-fast`` command line: the default digits run, data files, and clean errors."""

import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from interrupts import interrupt_when_ready

from nnopt_fast import cli


def run(capsys, *argv):
    """``main(argv)`` in-process; returns (status, stdout, stderr)."""
    status = cli.main(list(argv))
    out, err = capsys.readouterr()
    return status, out, err


def accuracies(out):
    found = dict(re.findall(r"^(train|validation) accuracy:\s+([0-9.]+)$", out, re.M))
    return float(found["train"]), float(found["validation"])


def assert_one_line_error(status, out, err, *fragments):
    assert status == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("nnopt-fast: error: ")
    for fragment in fragments:
        assert fragment in lines[0]
    assert "Traceback" not in err + out


# ---------------------------------------------------------------------------
# the main job
# ---------------------------------------------------------------------------
def test_default_train_reaches_95_percent_on_digits(capsys):
    status, out, err = run(capsys, "train")
    assert status == 0
    train_acc, val_acc = accuracies(out)
    assert val_acc >= 0.95 and train_acc >= val_acc - 0.01
    assert "load_digits: 1797 samples, 64 features, 10 classes; 1347 train / 450 validation" in out
    assert re.search(r"backend: \w+, threads: \d+ of \d+ available \([^)]*\), optimizer: "
                     r"adam, lr: 0.001 \(constant\), epochs: 30,", out)
    # Progress off a terminal: one plain line per epoch on stderr.
    assert len(re.findall(r"^epoch \d+/30 ", err, re.M)) == 30


@pytest.mark.parametrize("seed", [1, 2])
def test_default_train_on_the_reference_backend_with_other_seeds(capsys, seed):
    status, out, err = run(capsys, "train", "--backend", "numpy", "--seed", str(seed),
                           "--quiet")
    assert status == 0 and err == ""
    assert accuracies(out)[1] >= 0.95
    assert "backend: numpy" in out


def test_options_reach_the_trainer(capsys):
    status, out, _ = run(capsys, "train", "--layers", "32,16", "--activation", "relu",
                         "--optimizer", "momentum", "--lr", "0.02", "--epochs", "3",
                         "--batch-size", "64", "--l2", "0.5", "--l1", "0.1", "--l1-method",
                         "proximal", "--dropout", "0.1", "--backend", "numpy", "--threads", "1",
                         "--seed", "3", "--quiet")
    assert status == 0
    assert "MLP([64, 32, 16, 10], activation='relu'" in out
    assert "optimizer: momentum, lr: 0.02 (constant), epochs: 3," in out
    assert accuracies(out)[1] > 0.5


def test_batch_gradient_descent_option(capsys):
    status, out, _ = run(capsys, "train", "--batch-size", "all", "--optimizer", "sgd",
                         "--lr", "0.5", "--epochs", "5", "--backend", "numpy", "--quiet")
    assert status == 0 and "epochs: 5" in out


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_divergence_is_one_line_and_status_1(capsys):
    status, out, err = run(capsys, "train", "--activation", "relu", "--optimizer", "sgd",
                           "--lr", "1e30", "--epochs", "2", "--backend", "numpy", "--quiet")
    assert status == 1
    assert len(err.strip().splitlines()) == 1 and "diverged in epoch 1" in err


# ---------------------------------------------------------------------------
# --data FILE
# ---------------------------------------------------------------------------
@pytest.fixture
def blobs(rng):
    """Three well separated classes labelled 1, 5 and 9 (not 0..K-1)."""
    centers = np.array([[0.0, 0.0, 0.0], [4.0, 0.0, 4.0], [0.0, 4.0, -4.0]])
    labels = np.repeat([1, 5, 9], 40)
    X = centers[np.repeat([0, 1, 2], 40)] + rng.normal(size=(120, 3))
    return X, labels


def test_csv_with_header_and_arbitrary_labels(tmp_path, capsys, blobs):
    X, y = blobs
    path = tmp_path / "blobs.csv"
    np.savetxt(path, np.column_stack([X, y]), delimiter=",", header="a,b,c,label",
               comments="")
    status, out, _ = run(capsys, "train", "--data", str(path), "--backend", "numpy",
                         "--quiet")
    assert status == 0
    assert "blobs.csv: 120 samples, 3 features, 3 classes; 90 train / 30 validation" in out
    assert accuracies(out)[1] >= 0.9


def test_npz(tmp_path, capsys, blobs):
    X, y = blobs
    path = tmp_path / "blobs.npz"
    np.savez(path, X=X, y=y)
    status, out, _ = run(capsys, "train", "--data", str(path), "--backend", "numpy",
                         "--lr", "0.01", "--quiet")
    assert status == 0 and accuracies(out)[1] >= 0.9


def write(tmp_path, name, content):
    path = tmp_path / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content)
    return str(path)


BAD_FILES = {
    "missing": (None, "no such file"),
    "data.txt": ("1,2,0\n", "expected a .csv or .npz file"),
    "words.csv": ("hello,world\nfoo,bar\nbaz,qux\n",
                  "line 2, column 1 ('hello'): 'foo' is not a number"),
    "short.csv": ("1,2,0\n3,1\n4,5,1\n", "line 2, column 3: the label is missing"),
    "long.csv": ("1,2,0\n3,1,5,6\n4,5,1\n", "line 2: 4 fields, but the rows before it have 3"),
    "empty.csv": ("", "the file holds no rows"),
    "blank.csv": ("1,2,0\n\n4,5,1\n", "line 2 is empty"),
    "onecol.csv": ("1\n2\n", "expected feature columns followed by a label column"),
    "nan.csv": ("1,nan,0\n3,4,1\n", "line 1, column 2: 'nan' is not a finite number"),
    "gap.csv": ("a,b,label\n1,2,0\n3,,1\n", "line 3, column 2 ('b'): an empty or missing field"),
    "oneclass.csv": ("1,2,0\n3,4,0\n", "needs at least two classes"),
    "tiny.csv": ("1,2,0\n3,4,1\n5,6,1\n", "cannot make a stratified split"),
    "binary.csv": (b"\x00\x01\xff\xfe" * 10, "not a text CSV file"),
    "corrupt.npz": (b"not a zip file", "not a readable .npz file"),
}


@pytest.mark.parametrize("name", sorted(BAD_FILES))
def test_bad_data_file_is_one_line_and_status_2(tmp_path, capsys, name):
    content, fragment = BAD_FILES[name]
    path = str(tmp_path / "nope.csv") if content is None else write(tmp_path, name, content)
    status, out, err = run(capsys, "train", "--data", path, "--backend", "numpy")
    assert_one_line_error(status, out, err, "--data", fragment)


@pytest.mark.parametrize("arrays, fragment", [
    ({"X": np.ones((4, 2))}, "missing array(s) y"),
    ({"X": np.ones(4), "y": np.arange(4)}, "X must be 2-D"),
    ({"X": np.ones((4, 2)), "y": np.arange(3)}, "y must be 1-D with one label per row"),
    ({"X": np.array([["a", "b"]] * 4), "y": np.arange(4)}, "X must be numeric"),
])
def test_bad_npz_contents(tmp_path, capsys, arrays, fragment):
    path = tmp_path / "bad.npz"
    np.savez(path, **arrays)
    status, out, err = run(capsys, "train", "--data", str(path))
    assert_one_line_error(status, out, err, fragment)


def test_an_error_in_a_real_process_has_no_traceback(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "nnopt_fast.cli", "train", "--data",
                           str(tmp_path / "missing.csv")], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        f"nnopt-fast: error: --data: no such file: {tmp_path / 'missing.csv'}"]
    assert proc.stdout == ""


def test_ctrl_c_prints_one_line_and_exits_130():
    # Off a terminal, one progress line per epoch: interrupt in the second epoch.
    status, out, err = interrupt_when_ready(
        [sys.executable, "-m", "nnopt_fast.cli", "train", "--epochs", "100000", "--backend",
         "numpy"], lambda line: line.startswith("epoch 1/"))
    assert status == 130
    lines = [l for l in err.splitlines() if not l.startswith("epoch ")]
    assert len(lines) == 1, err
    assert re.fullmatch(r"nnopt-fast: train: interrupted after \d+ of 100000 epochs; "
                        r"nothing saved", lines[0])
    assert "Traceback" not in err and "validation accuracy" not in out


# ---------------------------------------------------------------------------
# bad options
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("argv, fragment", [
    (["train", "--lr", "-1"], "train: --lr must be > 0"),
    (["train", "--lr", "fast"], "argument --lr: invalid float value"),
    (["train", "--epochs", "0"], "train: --epochs must be >= 1"),
    (["train", "--epochs", "2.5"], "argument --epochs: invalid int value"),
    (["train", "--dropout", "1"], "train: --dropout must be < 1"),
    (["train", "--dropout", "0.1,x"], "argument --dropout"),
    (["train", "--batch-size", "0"], "train: --batch-size must be >= 1"),
    (["train", "--batch-size", "many"], "--batch-size must be an integer or 'all'"),
    (["train", "--l2", "-1"], "train: --l2 must be >= 0"),
    (["train", "--l1", "-1"], "train: --l1 must be >= 0"),
    (["train", "--momentum", "2"], "train: --momentum must be <= 1"),
    (["train", "--l2", "1", "--alpha", "1"], "argument --alpha: not allowed with argument --l2"),
    (["train", "--lr-schedule", "sawtooth"], "argument --lr-schedule: invalid choice"),
    (["train", "--history", "h.txt"], "--history: expected a .csv or .json file name"),
    (["train", "--save", "/no/such/dir/m.npz"], "--save: no such directory: /no/such/dir"),
    (["train", "--threads", "many"], "argument --threads: expected a number of threads"),
    (["train", "--alpha", "-1"], "train: --alpha must be >= 0"),
    (["train", "--early-stopping", "0"], "train: --early-stopping must be >= 1"),
    (["train", "--layers", "64,x"], "argument --layers"),
    (["train", "--layers", "0"], "layer sizes must be >= 1"),
    (["train", "--activation", "swish"], "argument --activation: invalid choice"),
    (["train", "--optimizer", "rmsprop"], "argument --optimizer: invalid choice"),
    (["train", "--backend", "cuda"], "argument --backend: invalid choice"),
    (["train", "--threads", "0"], "train: --threads must be a positive integer"),
    (["train", "--val-fraction", "1.5"], "--val-fraction must be in (0, 1)"),
    (["train", "--bogus"], "unrecognized arguments: --bogus"),
    (["fly"], "invalid choice: 'fly'"),
    ([], "choose a command"),
    (["predict", "m.npz"], "predict: --data FILE is required"),
    (["diagnose"], "the following arguments are required: --out"),
    (["diagnose", "--out", "d", "--cv", "1"], "diagnose: --cv must be >= 2"),
])
def test_bad_options_are_one_line_and_status_2(capsys, argv, fragment):
    status, out, err = run(capsys, *argv)
    assert_one_line_error(status, out, err, fragment)
    assert out == ""  # nothing is trained or printed before the options are checked


def test_help_and_version(capsys):
    with pytest.raises(SystemExit) as info:
        cli.main(["train", "--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    for option in ("--layers", "--activation", "--lr", "--epochs", "--batch-size", "--l2",
                   "--l1", "--l1-method", "--dropout", "--optimizer", "--backend", "--threads",
                   "--seed", "--data", "--header", "--label-column", "--task", "--save",
                   "--history", "--early-stopping", "--lr-schedule", "--alpha"):
        assert option in out
    with pytest.raises(SystemExit):
        cli.main(["--version"])
    assert "nnopt_fast" in capsys.readouterr().out


@pytest.mark.parametrize("command", ["train", "predict", "diagnose"])
def test_help_shows_every_default(capsys, command):
    parser = cli.build_parser()
    sub = next(a for a in parser._actions if a.dest == "command").choices[command]
    for action in sub._actions:
        flags = "/".join(action.option_strings) or action.dest
        if action.option_strings in (["-h", "--help"], ["--max-iter"], ["--random-state"]) \
                or not action.option_strings or action.nargs == 0 or action.required:
            continue
        assert "(default: " in action.help, flags
        assert "(default: None)" not in action.help, flags
    with pytest.raises(SystemExit):
        cli.main([command, "--help"])
    assert "(default: None)" not in capsys.readouterr().out


# ---------------------------------------------------------------------------
# one package, no circle
# ---------------------------------------------------------------------------
def test_the_library_never_imports_the_command_line():
    code = ("import sys, nnopt_fast as nf; nf.diagnose; import nnopt_fast.diagnosis; "
            "print(sorted(m for m in sys.modules if m.startswith('nnopt_fast.cli')))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"


# ---------------------------------------------------------------------------
# the README's quick start is what CI runs
# ---------------------------------------------------------------------------
ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.skipif(not (ROOT / ".ci" / "run").is_file(),
                    reason="needs the repository checkout (README.md and .ci/run)")
def test_readme_quick_start_is_two_commands_and_ci_runs_the_second():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    quick_start = readme.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    commands = re.findall(r"```bash\n(.*?)\n```", quick_start, re.S)
    assert commands == ["pip install . && nnopt-fast train",
                        'pip install ".[test]" && python -m pytest']
    assert '{ pip install ".[test]" && python -m pytest; }' in (ROOT / ".ci" / "run").read_text()
