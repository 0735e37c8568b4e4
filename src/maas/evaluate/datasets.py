"""Labelled data to evaluate on, from a user-given spec: an .npz file, a CSV file, an image folder, or a built-in.

Specs are user input, so every failure is an `InvalidArgument` naming the file and what is wrong with it.

Built-ins are scikit-learn's embedded sets: `sklearn:NAME` with NAME in digits, iris, wine, breast_cancer,
diabetes. A query string picks a held-out part: `sklearn:digits?split=test&test_size=0.25&seed=0`; `split` is
`all` (default), `train` or `test`; the split is shuffled with `seed` (default 0) and stratified for the
classification sets, so `train` and `test` of one seed never overlap and always cover every class.
`sklearn:NAME:train` / `:test` is the older fixed 75/25 split (a seed-0 permutation, not stratified) that
`maas optimize` used before it read data through here; it is kept so recorded lineage stays reproducible.
Files: `.npz` (x, optional y), `.npy` (x only), `.csv`, or an image folder.
"""

from __future__ import annotations

import csv
import hashlib
import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal
from urllib.parse import parse_qsl

import numpy as np

from maas.errors import InvalidArgument

Task = Literal["classification", "regression"]
BUILTINS: dict[str, Task] = {
    "digits": "classification",
    "iris": "classification",
    "wine": "classification",
    "breast_cancer": "classification",
    "diabetes": "regression",
}
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
MAX_IMAGE_PIXELS = 64 * 1024 * 1024


@dataclass(frozen=True)
class Dataset:
    """Features `x` (numbers, or an object array of encoded image bytes) and optional targets `y`."""

    x: np.ndarray
    y: np.ndarray | None
    fingerprint: str
    name: str
    task_hint: Task | None = None
    class_names: tuple[str, ...] = ()

    def __len__(self) -> int:
        return int(self.x.shape[0])

    @property
    def is_images(self) -> bool:
        """True when `x` holds encoded PNG/JPEG bytes, decoded by the version's pre-processing or by us."""
        return self.x.dtype == object


def fingerprint(x: np.ndarray, y: np.ndarray | None) -> str:
    """A short content hash, so stored results say exactly which data they were measured on."""
    h = hashlib.sha256()
    for arr in (x, y):
        if arr is None:
            h.update(b"none")
            continue
        h.update(f"{arr.dtype.str if arr.dtype != object else 'object'}{arr.shape}".encode())
        if arr.dtype == object:
            for item in arr.reshape(-1):
                b = item if isinstance(item, bytes) else str(item).encode()
                h.update(len(b).to_bytes(8, "little") + b)
        else:
            h.update(np.ascontiguousarray(arr).tobytes())
    return h.hexdigest()[:16]


def make_dataset(
    x: np.ndarray, y: np.ndarray | None, name: str, task_hint: Task | None = None, class_names: tuple[str, ...] = ()
) -> Dataset:
    if y is not None and len(y) != len(x):
        raise InvalidArgument(f"dataset {name}: x has {len(x)} rows but y has {len(y)}")
    if len(x) == 0:
        raise InvalidArgument(f"dataset {name} is empty")
    return Dataset(x, y, fingerprint(x, y), name, task_hint, tuple(class_names))


def load_dataset(spec: str, *, target: str | None = None) -> Dataset:
    """Load `spec`; `target` names the CSV column holding the labels (default: the last column)."""
    if not isinstance(spec, str) or not spec:
        raise InvalidArgument("empty dataset spec")
    if spec.startswith("sklearn:"):
        return _builtin(spec)
    path = Path(spec)
    if not path.exists():
        raise InvalidArgument(f"dataset {spec!r} does not exist")
    if path.is_dir():
        return _image_folder(path)
    suffix = path.suffix.lower()
    if suffix == ".npz":
        return _npz(path)
    if suffix == ".npy":
        return _npy(path)
    if suffix in (".csv", ".txt"):
        return _csv(path, target)
    raise InvalidArgument(
        f"dataset {spec!r}: expected a .npz or .csv file, a .npy array, an image folder, or sklearn:NAME"
    )


# --- built-ins ---------------------------------------------------------------------------------------------
LEGACY_SPLIT_SEED = 0
LEGACY_TEST_FRACTION = 0.25


def legacy_split_indices(n: int) -> tuple[np.ndarray, np.ndarray]:
    """(train, test) row indices of the fixed `sklearn:NAME:train` / `:test` split, both sorted."""
    order = np.random.default_rng(LEGACY_SPLIT_SEED).permutation(n)
    n_test = int(round(n * LEGACY_TEST_FRACTION))
    return np.sort(order[n_test:]), np.sort(order[:n_test])


def _builtin(spec: str) -> Dataset:
    name, _, query = spec[len("sklearn:"):].partition("?")
    name, _, legacy = name.partition(":")
    if name not in BUILTINS:
        raise InvalidArgument(f"unknown built-in dataset {name!r}; choose one of {sorted(BUILTINS)}")
    if legacy:
        if legacy not in ("train", "test") or query:
            raise InvalidArgument(
                f"dataset {spec!r}: the fixed split is sklearn:{name}:train or :test, without options; "
                f"for a seeded split use sklearn:{name}?split=test&seed=0"
            )
        return _legacy_split(spec, name, legacy)
    params = dict(parse_qsl(query, keep_blank_values=True))
    unknown = set(params) - {"split", "seed", "test_size"}
    if unknown:
        raise InvalidArgument(f"dataset {spec!r}: unknown option(s) {sorted(unknown)}; use split, seed, test_size")
    split = params.get("split", "all")
    if split not in ("all", "train", "test"):
        raise InvalidArgument(f"dataset {spec!r}: split must be all, train or test")
    try:
        seed = int(params.get("seed", "0"))
        test_size = float(params.get("test_size", "0.25"))
    except ValueError:
        raise InvalidArgument(f"dataset {spec!r}: seed must be an integer and test_size a number") from None
    if not 0 < test_size < 1:
        raise InvalidArgument(f"dataset {spec!r}: test_size must be between 0 and 1")

    from sklearn import datasets as skd

    bunch = getattr(skd, f"load_{name}")()
    x, y = np.asarray(bunch.data, np.float32), np.asarray(bunch.target)
    task = BUILTINS[name]
    class_names = tuple(str(c) for c in bunch.target_names) if task == "classification" else ()
    if split != "all":
        from sklearn.model_selection import train_test_split

        x_tr, x_te, y_tr, y_te = train_test_split(
            x, y, test_size=test_size, random_state=seed, stratify=y if task == "classification" else None
        )
        x, y = (x_tr, y_tr) if split == "train" else (x_te, y_te)
    return make_dataset(x, y, spec, task, class_names)


def _legacy_split(spec: str, name: str, split: str) -> Dataset:
    from sklearn import datasets as skd

    bunch = getattr(skd, f"load_{name}")()
    x, y = np.asarray(bunch.data, np.float32), np.asarray(bunch.target)
    idx = legacy_split_indices(len(x))[0 if split == "train" else 1]
    task = BUILTINS[name]
    class_names = tuple(str(c) for c in bunch.target_names) if task == "classification" else ()
    return make_dataset(x[idx], y[idx], spec, task, class_names)


# --- files -------------------------------------------------------------------------------------------------
def _npz(path: Path) -> Dataset:
    try:
        with np.load(path, allow_pickle=False) as f:
            if "x" not in f:
                raise InvalidArgument(f"dataset {path}: an .npz needs an array named 'x' (and 'y' for labels)")
            x = f["x"]
            y = f.get("y")
    except InvalidArgument:
        raise
    except (OSError, ValueError, EOFError):
        # numpy's own message speaks of pickled data and allow_pickle: misleading, and a hint toward unsafe loading
        raise InvalidArgument(f"dataset {path.name}: not a readable .npz file (a zip of .npy arrays)") from None
    if x.ndim == 0 or not np.issubdtype(x.dtype, np.number):
        raise InvalidArgument(f"dataset {path}: 'x' must be a numeric array of one row per sample")
    if y is not None and y.ndim == 2 and y.shape[1] == 1:
        y = y.reshape(-1)  # a column vector of labels
    if y is not None and y.ndim != 1:
        raise InvalidArgument(f"dataset {path}: 'y' must be one-dimensional, got shape {list(y.shape)}")
    return make_dataset(x, y, str(path))


def _npy(path: Path) -> Dataset:
    """Inputs only (no labels): enough for calibration data or for running a model."""
    try:
        x = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError):
        raise InvalidArgument(f"dataset {path.name}: not a readable .npy file of numeric data") from None
    if x.ndim == 0 or not np.issubdtype(x.dtype, np.number):
        raise InvalidArgument(f"dataset {path}: the array must be numeric with one row per sample")
    return make_dataset(x, None, str(path))


def _csv(path: Path, target: str | None) -> Dataset:
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidArgument(f"dataset {path}: cannot read it as UTF-8 text ({exc})") from None
    rows = [(n, r) for n, r in enumerate(csv.reader(io.StringIO(text)), start=1) if any(c.strip() for c in r)]
    if len(rows) < 2:
        raise InvalidArgument(f"dataset {path}: a CSV needs a header row and at least one data row")
    header = [h.strip() for h in rows[0][1]]
    if len(header) < 2:
        raise InvalidArgument(f"dataset {path}: a CSV needs at least one feature column and a target column")
    col = len(header) - 1 if target is None else _column(header, target, path)
    features: list[list[float]] = []
    labels: list[str] = []
    for lineno, row in rows[1:]:
        if len(row) != len(header):
            raise InvalidArgument(f"dataset {path}, line {lineno}: {len(row)} fields, the header has {len(header)}")
        values = []
        for j, cell in enumerate(row):
            if j == col:
                continue
            try:
                values.append(float(cell))
            except ValueError:
                raise InvalidArgument(
                    f"dataset {path}, line {lineno}: column {header[j]!r} is not numeric ({cell[:40]!r}); "
                    "only numeric features are supported"
                ) from None
        features.append(values)
        labels.append(row[col].strip())
    x = np.asarray(features, np.float32)
    y, task, class_names = _targets(labels)
    return make_dataset(x, y, str(path), task, class_names)


def _column(header: list[str], target: str, path: Path) -> int:
    if target not in header:
        raise InvalidArgument(f"dataset {path}: no column {target!r}; columns are {header}")
    return header.index(target)


def _targets(labels: list[str]) -> tuple[np.ndarray, Task | None, tuple[str, ...]]:
    """Integers stay integers (class indices or counts), other numbers are floats, anything else is a class name."""
    try:
        values = np.asarray([float(v) for v in labels])
    except ValueError:
        names = tuple(sorted(set(labels)))
        index = {n: i for i, n in enumerate(names)}
        return np.asarray([index[v] for v in labels], np.int64), "classification", names
    if np.all(values == np.round(values)):
        return values.astype(np.int64), None, ()
    return values, "regression", ()


def _image_folder(root: Path) -> Dataset:
    classes = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not classes:
        raise InvalidArgument(f"dataset {root}: an image folder needs one sub-folder per class")
    items: list[bytes] = []
    y: list[int] = []
    for i, cls in enumerate(classes):
        for f in sorted((root / cls).iterdir()):
            if f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES:
                try:
                    items.append(f.read_bytes())
                except OSError as exc:
                    raise InvalidArgument(f"dataset {root}: cannot read {f} ({exc})") from None
                y.append(i)
    if not items:
        raise InvalidArgument(f"dataset {root}: no PNG or JPEG files in its class folders {classes}")
    x = np.empty(len(items), dtype=object)
    x[:] = items
    return make_dataset(x, np.asarray(y, np.int64), str(root), "classification", tuple(classes))


def decode_images(x: np.ndarray, mode: str = "RGB", size: tuple[int, int] | None = None) -> np.ndarray:
    """Encoded images -> NHWC uint8 pixels, for versions that take pixels and declare no decode step."""
    from PIL import Image

    out: list[np.ndarray] = []
    for i, item in enumerate(x.reshape(-1)):
        try:
            image: Any = Image.open(io.BytesIO(item), formats=("PNG", "JPEG"))
            if image.width * image.height > MAX_IMAGE_PIXELS:
                raise InvalidArgument(f"image {i} has {image.width}x{image.height} pixels, over the limit")
            image = image.convert(mode)
        except InvalidArgument:
            raise
        except Exception as exc:  # Pillow raises several types for unreadable data
            raise InvalidArgument(f"cannot decode image {i}: {exc}") from None
        if size is not None and (image.height, image.width) != tuple(size):
            image = image.resize((size[1], size[0]), Image.Resampling.BILINEAR)
        out.append(np.asarray(image))
    if len({a.shape for a in out}) > 1:
        raise InvalidArgument("the images have different sizes and the model's input does not fix one")
    arr = np.stack(out)
    return arr[..., np.newaxis] if arr.ndim == 3 else arr
