"""Data set specs: built-ins with held-out splits, .npz, CSV and image folders; malformed input is a clear
InvalidArgument naming the file."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest

from maas.errors import InvalidArgument
from maas.evaluate.datasets import decode_images, load_dataset


def png(color: int, size: tuple[int, int] = (8, 8), mode: str = "L", fmt: str = "PNG") -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.new(mode, size, color).save(buf, format=fmt)
    return buf.getvalue()


def test_builtin_split_is_disjoint_stratified_and_seeded() -> None:
    full = load_dataset("sklearn:iris")
    train = load_dataset("sklearn:iris?split=train&seed=3")
    test = load_dataset("sklearn:iris?split=test&seed=3&test_size=0.2")
    assert (len(full), len(test)) == (150, 30)
    assert full.task_hint == "classification" and full.class_names == ("setosa", "versicolor", "virginica")
    assert np.bincount(test.y).tolist() == [10, 10, 10]  # stratified
    assert len(train) == 112
    assert load_dataset("sklearn:iris?split=test&seed=3&test_size=0.2").fingerprint == test.fingerprint
    assert load_dataset("sklearn:iris?split=test&seed=4&test_size=0.2").fingerprint != test.fingerprint
    assert load_dataset("sklearn:diabetes").task_hint == "regression"


def test_train_and_test_do_not_overlap() -> None:
    train = load_dataset("sklearn:digits?split=train")
    test = load_dataset("sklearn:digits?split=test")
    assert len(train) + len(test) == 1797
    train_idx = {(r.tobytes(), int(t)) for r, t in zip(train.x, train.y, strict=True)}
    test_idx = {(r.tobytes(), int(t)) for r, t in zip(test.x, test.y, strict=True)}
    full = {(r.tobytes(), int(t)) for r, t in zip(load_dataset("sklearn:digits").x, load_dataset("sklearn:digits").y,
                                                  strict=True)}
    assert train_idx | test_idx == full and len(test) == 450


@pytest.mark.parametrize(
    "spec, words",
    [
        ("sklearn:mnist", "unknown built-in"),
        ("sklearn:iris?split=val", "split"),
        ("sklearn:iris?seed=x", "seed"),
        ("sklearn:iris?test_size=2", "test_size"),
        ("sklearn:iris?shuffle=1", "unknown option"),
        ("", "empty"),
    ],
)
def test_bad_builtin_specs(spec: str, words: str) -> None:
    with pytest.raises(InvalidArgument, match=words):
        load_dataset(spec)


def test_npz(tmp_path: Path) -> None:
    p = tmp_path / "d.npz"
    np.savez(p, x=np.arange(12, dtype=np.float32).reshape(4, 3), y=np.array([0, 1, 0, 1]))
    d = load_dataset(str(p))
    assert d.x.shape == (4, 3) and d.y.tolist() == [0, 1, 0, 1] and len(d.fingerprint) == 16
    np.savez(p, x=np.zeros((2, 2)))
    assert load_dataset(str(p)).y is None


@pytest.mark.parametrize(
    "arrays, words",
    [
        ({"features": np.zeros((2, 2))}, "named 'x'"),
        ({"x": np.zeros((3, 2)), "y": np.zeros(2)}, "3 rows but y has 2"),
        ({"x": np.zeros((2, 2)), "y": np.zeros((2, 2))}, "one-dimensional"),
        ({"x": np.array(["a", "b"])}, "numeric"),
    ],
)
def test_malformed_npz(tmp_path: Path, arrays: dict[str, np.ndarray], words: str) -> None:
    p = tmp_path / "d.npz"
    np.savez(p, **arrays)
    with pytest.raises(InvalidArgument, match=words):
        load_dataset(str(p))


def test_garbage_npz_and_missing_files(tmp_path: Path) -> None:
    (tmp_path / "bad.npz").write_bytes(b"not a zip")
    with pytest.raises(InvalidArgument, match="not a readable .npz"):
        load_dataset(str(tmp_path / "bad.npz"))
    (tmp_path / "text.npz").write_text("x,y\n1,2\n")  # numpy would speak of pickled data and allow_pickle
    with pytest.raises(InvalidArgument, match="not a readable .npz") as caught:
        load_dataset(str(tmp_path / "text.npz"))
    assert "pickle" not in str(caught.value)
    with pytest.raises(InvalidArgument, match="does not exist"):
        load_dataset(str(tmp_path / "nope.csv"))
    (tmp_path / "d.parquet").write_bytes(b"")
    with pytest.raises(InvalidArgument, match="expected a .npz or .csv"):
        load_dataset(str(tmp_path / "d.parquet"))


def test_csv_default_and_named_target(tmp_path: Path) -> None:
    p = tmp_path / "d.csv"
    p.write_text("a,b,label\n1,2,cat\n3,4,dog\n5,6,cat\n\n")
    d = load_dataset(str(p))
    assert d.x.tolist() == [[1, 2], [3, 4], [5, 6]]
    assert d.y.tolist() == [0, 1, 0] and d.class_names == ("cat", "dog") and d.task_hint == "classification"
    with pytest.raises(InvalidArgument, match="column 'label' is not numeric"):
        load_dataset(str(p), target="a")
    p.write_text("a,b,c\n1,2,3\n3,4,5\n")
    d = load_dataset(str(p), target="a")
    assert d.y.tolist() == [1, 3] and d.x.tolist() == [[2, 3], [4, 5]] and d.task_hint is None
    p.write_text("a,y\n1,0.5\n2,1.5\n")
    assert load_dataset(str(p)).task_hint == "regression"


@pytest.mark.parametrize(
    "text, target, words",
    [
        ("a,b,y\n1,x,0\n", None, "line 2: column 'b' is not numeric"),
        ("a,b,y\n1,2\n", None, "line 2: 2 fields"),
        ("a,b,y\n1,2,0\n", "z", "no column 'z'"),
        ("a,b,y\n", None, "header row and at least one data row"),
        ("y\n1\n", None, "at least one feature column"),
    ],
)
def test_malformed_csv(tmp_path: Path, text: str, target: str | None, words: str) -> None:
    p = tmp_path / "d.csv"
    p.write_text(text)
    with pytest.raises(InvalidArgument, match=words):
        load_dataset(str(p), target=target)


def test_binary_csv_is_refused(tmp_path: Path) -> None:
    p = tmp_path / "d.csv"
    p.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(InvalidArgument, match="UTF-8"):
        load_dataset(str(p))


def test_image_folder_keeps_encoded_bytes(tmp_path: Path) -> None:
    for cls, color in (("dark", 10), ("light", 240)):
        (tmp_path / cls).mkdir()
        for i in range(3):
            (tmp_path / cls / f"{i}.png").write_bytes(png(color))
    (tmp_path / "light" / "notes.txt").write_text("ignored")
    (tmp_path / "light" / "x.jpg").write_bytes(png(200, fmt="JPEG"))
    d = load_dataset(str(tmp_path))
    assert d.is_images and len(d) == 7 and d.class_names == ("dark", "light")
    assert d.y.tolist() == [0, 0, 0, 1, 1, 1, 1]
    pixels = decode_images(d.x, "L")
    assert pixels.shape == (7, 8, 8, 1) and pixels.dtype == np.uint8 and pixels[0].max() == 10
    assert decode_images(d.x[:1], "RGB", (4, 6)).shape == (1, 4, 6, 3)


def test_bad_image_folders(tmp_path: Path) -> None:
    with pytest.raises(InvalidArgument, match="one sub-folder per class"):
        load_dataset(str(tmp_path))
    (tmp_path / "a").mkdir()
    with pytest.raises(InvalidArgument, match="no PNG or JPEG"):
        load_dataset(str(tmp_path))
    (tmp_path / "a" / "broken.png").write_bytes(b"not an image")
    d = load_dataset(str(tmp_path))
    with pytest.raises(InvalidArgument, match="cannot decode image 0"):
        decode_images(d.x)


def test_fixed_split_and_npy(tmp_path: Path) -> None:
    """The older `sklearn:NAME:train|test` split (kept for recorded lineage) and inputs-only .npy files."""
    train, test = load_dataset("sklearn:digits:train"), load_dataset("sklearn:digits:test")
    assert len(train) == 1348 and len(test) == 449 and test.name == "sklearn:digits:test"
    assert load_dataset("sklearn:digits:test").fingerprint == test.fingerprint
    for bad in ("sklearn:digits:val", "sklearn:digits:test?seed=1"):
        with pytest.raises(InvalidArgument, match="fixed split"):
            load_dataset(bad)
    np.save(tmp_path / "x.npy", np.ones((4, 3), np.float32))
    only_x = load_dataset(str(tmp_path / "x.npy"))
    assert only_x.x.shape == (4, 3) and only_x.y is None
