"""The command line's one data loader: CSV (through pandas) or .npz, labels, task detection."""

import csv
import os
import re
from dataclasses import dataclass, field

import numpy as np

from .options import UsageError, one_line

__all__ = ["Dataset", "load_data", "load_features", "infer_task", "encode_labels",
           "INTEGER_CLASSES_MAX"]

#: Integer-valued targets with at most this many distinct values are taken for classes
#: by ``--task auto`` (or with more, while they are at most 1 in 20 of the rows).
INTEGER_CLASSES_MAX = 20
_INDEX_NAMES = ("", "Unnamed: 0")


@dataclass
class Dataset:
    """What ``--data`` read.

    Attributes
    ----------
    X : ndarray of shape (n_samples, n_features), float64
    y : ndarray of shape (n_samples,) or None
        Targets as read: float64 numbers, or strings (object). None when the file holds
        features only (``nnopt-fast predict``).
    name : str
        The file's base name (or the built-in data set's).
    feature_names : list of str or None
        From the header, when there is one.
    label_name : str or None
        The label column's name (header) or ``"column N"``.
    label_index : int or None
        The label column's 0-based position among the file's columns (CSV).
    notes : list of str
        What the loader decided on its own (header detected, index column dropped).
    """

    X: np.ndarray
    y: object
    name: str
    feature_names: object = None
    label_name: object = None
    notes: list = field(default_factory=list)
    label_index: object = None


def _fail(path, message):
    raise UsageError(f"--data: {os.path.basename(path)}: {message}")


def _is_number(text):
    try:
        float(text)
    except ValueError:
        return False
    return True


def _first_rows(path, n=2):
    """The comment lines (``#``) before the data, and the first ``n`` rows after them."""
    try:
        with open(path, newline="", encoding="utf-8") as f:
            n_comments = 0
            lines = []
            for line in f:
                if not lines and line.lstrip().startswith("#"):
                    n_comments += 1
                    continue
                lines.append(line)
                if len(lines) == n:
                    break
    except UnicodeDecodeError:
        _fail(path, "not a text CSV file (it is not UTF-8)")
    except OSError as exc:
        _fail(path, f"cannot read it ({one_line(exc)})")
    return n_comments, [row for row in csv.reader(lines)]


def _detect_header(first):
    """Whether a first row is a header: no field of it is a number (an empty first field
    aside), or it reads 0, 1, ..., k-1 (pandas' names of unnamed columns)."""
    fields = [f.strip() for f in first]
    if fields and fields[0] == "":
        fields = fields[1:]
    if not fields:
        return False
    if not any(_is_number(f) for f in fields):
        return True
    return fields == [str(k) for k in range(len(fields))]


def _read_csv_fields(path, header):
    """The CSV's fields as strings: (frame, column names or None, line of the first row)."""
    import pandas as pd

    n_comments, first = _first_rows(path)
    if not first:
        _fail(path, "the file holds no rows")
    if header == "auto":
        has_header = _detect_header(first[0])
    else:
        has_header = header == "yes"
    try:
        frame = pd.read_csv(path, header=0 if has_header else None, skiprows=n_comments,
                            dtype=str, keep_default_na=False, skip_blank_lines=False,
                            encoding="utf-8")
    except pd.errors.ParserError as exc:
        found = re.search(r"Expected (\d+) fields in line (\d+), saw (\d+)", str(exc))
        if found:
            expected, line, saw = found.groups()
            _fail(path, f"line {int(line) + n_comments}: {saw} fields, but the rows before "
                        f"it have {expected}")
        _fail(path, f"not a readable CSV file ({one_line(exc)})")
    except (UnicodeDecodeError, ValueError, OSError) as exc:
        _fail(path, f"not a readable CSV file ({one_line(exc)})")
    names = [str(c) for c in frame.columns] if has_header else None
    first_line = n_comments + 1 + int(has_header)
    return frame, names, first_line, has_header, header == "auto"


def _empty_rows(frame):
    return (frame == "").all(axis=1).to_numpy()


def _column_name(index, names):
    if names is None:
        return f"column {index + 1}"
    return f"column {index + 1} ({names[index]!r})"


def _label_index(label_column, names, n_columns, path):
    """The 0-based index of ``--label-column`` (a name, a 1-based number, or ``last``)."""
    spec = str(label_column).strip()
    if names is not None and spec in names:
        return names.index(spec)
    if spec.lower() == "last":
        return n_columns - 1
    if spec.lower() == "first":
        return 0
    try:
        number = int(spec)
    except ValueError:
        known = f"; the columns are {names}" if names is not None else \
            " (the file has no header: give a column number)"
        raise UsageError(f"--label-column: no column named {spec!r}{known}") from None
    if number == 0 or abs(number) > n_columns:
        raise UsageError(f"--label-column: {number} is not a column of "
                         f"{os.path.basename(path)}, which has {n_columns} (1 to {n_columns},"
                         f" or -1 for the last)")
    return number - 1 if number > 0 else n_columns + number


def _drop_index_column(frame, names, notes):
    """Drop a first column that pandas wrote as its index (an unnamed header field)."""
    if names is not None and names[0] in _INDEX_NAMES and len(names) > 1:
        notes.append("its first column (unnamed in the header) is an index pandas wrote: "
                     "dropped")
        return frame.iloc[:, 1:], names[1:]
    return frame, names


def _warn_row_counter(X, feature_names, notes):
    """Note a first feature column that counts the rows 0, 1, ..., like an index."""
    if X.shape[0] > 2 and np.array_equal(X[:, 0], np.arange(X.shape[0])):
        notes.append(f"warning: the first feature column{_named(feature_names)} counts the "
                     f"rows 0, 1, ..., {X.shape[0] - 1}, like an index written by pandas; it "
                     f"is used as a feature (remove it if it is an index)")


def _named(names):
    return f" ({names[0]!r})" if names else ""


@dataclass
class _Table:
    """A CSV's fields as strings, before any column is converted."""

    path: str
    frame: object
    names: object
    first_line: int
    notes: list
    header_guessed: bool

    @property
    def n_columns(self):
        return self.frame.shape[1]

    def numbers(self, columns):
        """Columns ``columns`` as float64; a bad field is an error naming line and column."""
        import pandas as pd

        raw = self.frame.iloc[:, columns]
        values = raw.apply(pd.to_numeric, errors="coerce").to_numpy(dtype=np.float64)
        bad = ~np.isfinite(values)
        if not bad.any():
            return values
        row, col = np.argwhere(bad)[0]  # the first bad field, in reading order
        text = raw.iat[row, col]
        what = ("an empty or missing field" if text.strip() == ""
                else f"{text!r} is not a finite number" if _is_number(text)
                else f"{text!r} is not a number")
        hint = ""
        if row == 0 and self.header_guessed and self.names is None:
            hint = " (if it is a header, pass --header yes)"
        _fail(self.path, f"line {self.first_line + row}, "
                         f"{_column_name(columns[col], self.names)}: {what}{hint}")

    def dataset(self, features, label):
        """The :class:`Dataset` of feature columns ``features`` and column ``label``."""
        X = self.numbers(features)
        names = self.names
        feature_names = None if names is None else [names[k] for k in features]
        name = os.path.basename(self.path)
        if label is None:
            return Dataset(X, None, name, feature_names, None, self.notes)
        raw = self.frame.iloc[:, label].to_numpy(dtype=object)
        missing = np.flatnonzero([str(v).strip() == "" for v in raw])
        if missing.size:
            _fail(self.path, f"line {self.first_line + missing[0]}, "
                             f"{_column_name(label, names)}: the label is missing")
        if all(_is_number(v) for v in raw):
            y = self.numbers([label])[:, 0]
        else:
            y = np.array([str(v).strip() for v in raw], dtype=object)
        label_name = names[label] if names is not None else f"column {label + 1}"
        return Dataset(X, y, name, feature_names, label_name, self.notes, label)


def _read_table(path, header):
    frame, names, first_line, has_header, guessed = _read_csv_fields(path, header)
    notes = ["header: " + ("yes" if has_header else "no")
             + (" (detected; --header yes|no to choose)" if guessed else "")]
    empty = _empty_rows(frame)
    n = len(empty)
    while n and empty[n - 1]:  # blank lines at the end of the file
        n -= 1
    frame, empty = frame.iloc[:n], empty[:n]
    if empty.any():
        _fail(path, f"line {first_line + int(np.argmax(empty))} is empty")
    if n == 0:
        _fail(path, "the file holds no rows of data")
    frame, names = _drop_index_column(frame, names, notes)
    return _Table(path, frame, names, first_line, notes, guessed)


def _read_npz(path, need_y):
    try:
        with np.load(path, allow_pickle=False) as f:
            wanted = ("X", "y") if need_y else ("X",)
            missing = [k for k in wanted if k not in f.files]
            if missing:
                _fail(path, f"missing array(s) {', '.join(missing)}; the file holds "
                            f"{sorted(f.files)}")
            X = f["X"]
            y = f["y"] if "y" in f.files and need_y else None
    except UsageError:
        raise
    except Exception as exc:  # zipfile.BadZipFile, pickled objects, truncated arrays...
        _fail(path, f"not a readable .npz file ({one_line(exc)})")
    if X.dtype.kind not in "biuf":
        _fail(path, f"X must be numeric, got dtype {X.dtype}")
    if X.ndim != 2 or X.shape[1] < 1:
        _fail(path, f"X must be 2-D with at least one feature column, got shape {X.shape}")
    X = X.astype(np.float64)
    if not np.isfinite(X).all():
        row, col = np.argwhere(~np.isfinite(X))[0]
        _fail(path, f"X[{row}, {col}] is {X[row, col]}, not a finite number")
    if y is not None:
        if y.ndim != 1 or len(y) != len(X):
            _fail(path, f"y must be 1-D with one label per row of X ({len(X)}), got shape "
                        f"{y.shape}")
        if y.dtype.kind in "biuf":
            y = y.astype(np.float64)
            if not np.isfinite(y).all():
                _fail(path, f"y[{int(np.argmax(~np.isfinite(y)))}] is not a finite number")
        else:
            y = y.astype(str).astype(object)
    return Dataset(X, y, os.path.basename(path))


def _open(path):
    if not os.path.isfile(path):
        raise UsageError(f"--data: no such file: {path}")
    ext = os.path.splitext(path)[1].lower()
    if ext not in (".csv", ".npz"):
        _fail(path, f"expected a .csv or .npz file, got {ext or 'no extension'!r}")
    return ext


def load_data(path, header="auto", label_column="last"):
    """Read features and targets from ``--data``.

    Parameters
    ----------
    path : str
        ``.csv``: one sample per row, comma-separated, an optional header line (lines
        starting with ``#`` before the data are skipped); every column but the label
        column must hold numbers. ``.npz``: arrays ``X`` (n_samples, n_features) and
        ``y`` (n_samples,).
    header : {"auto", "yes", "no"}
        Whether the first row names the columns; ``"auto"`` says yes when no field of
        it is a number (or when it reads 0, 1, ..., the names pandas gives unnamed
        columns).
    label_column : str
        The column of the targets: a header name, a 1-based number (negative: from the
        end) or ``"last"``.

    Returns
    -------
    Dataset

    Raises
    ------
    UsageError
        For a missing, unreadable or malformed file; a bad field names its line and
        column (lines counted from 1, the header included).
    """
    if _open(path) == ".npz":
        return _read_npz(path, need_y=True)
    table = _read_table(path, header)
    if table.n_columns < 2:
        _fail(path, f"expected feature columns followed by a label column, got "
                    f"{table.n_columns} column")
    label = _label_index(label_column, table.names, table.n_columns, path)
    data = table.dataset([k for k in range(table.n_columns) if k != label], label)
    _warn_row_counter(data.X, data.feature_names, data.notes)
    return data


def load_features(path, header="auto", n_features=None, feature_names=None,
                  label_column="last"):
    """Read the features of ``--data`` for a trained model (``nnopt-fast predict``).

    A file with the model's feature names in its header gives those columns; a file with
    one column more than the model's features also holds the label column
    (``label_column``), which is set aside as ``y``.

    Returns
    -------
    Dataset
        ``y`` is the label column when the file has one, else None.
    """
    if _open(path) == ".npz":
        data = _read_npz(path, need_y=False)
    else:
        table = _read_table(path, header)
        names, n_columns = table.names, table.n_columns
        if feature_names is not None and names is not None and set(feature_names) <= set(names):
            features = [names.index(f) for f in feature_names]
            rest = [k for k in range(n_columns) if k not in features]
            label = rest[0] if len(rest) == 1 else None
        elif n_features is not None and n_columns == n_features + 1:
            label = _label_index(label_column, names, n_columns, path)
            features = [k for k in range(n_columns) if k != label]
        else:
            features, label = list(range(n_columns)), None
        data = table.dataset(features, label)
    if n_features is not None and data.X.shape[1] != n_features:
        _fail(path, f"{data.X.shape[1]} feature columns, but the model was trained on "
                    f"{n_features}")
    return data


def infer_task(y, task="auto"):
    """``("classification" | "regression", reason)`` for the targets ``y``.

    ``"auto"``: strings are classes; numbers with a fractional part are a regression
    target; integer values are classes when there are at most
    :data:`INTEGER_CLASSES_MAX` distinct ones, or at most one distinct value per 20
    rows, and a regression target otherwise (diabetes: 214 distinct values in 442 rows).
    """
    if task != "auto":
        return task, "--task"
    y = np.asarray(y)
    if y.dtype.kind not in "biuf":
        return "classification", "the labels are not numbers"
    if np.any(y != np.round(y)):
        return "regression", "the targets have fractional parts"
    n_values = len(np.unique(y))
    if n_values <= INTEGER_CLASSES_MAX or n_values * 20 <= len(y):
        return "classification", f"{n_values} distinct integer values in {len(y)} rows"
    return "regression", f"{n_values} distinct integer values in {len(y)} rows"


def encode_labels(y):
    """``(classes, codes)``: the sorted distinct labels and each row's index into them.

    Integer-valued numbers become int64 labels (so ``1.0`` prints as ``1``).
    """
    y = np.asarray(y)
    if y.dtype.kind == "f" and np.all(y == np.round(y)):
        y = y.astype(np.int64)
    classes, codes = np.unique(y, return_inverse=True)
    return classes, codes.astype(np.int64)
