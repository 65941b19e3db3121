"""Dataset utilities for the documented task formats (SDK.md "Task formats").

Archives are extracted safely: a member whose path would land outside the target folder
(absolute paths, `..` components, drive letters, links) is refused with `UnsafeArchiveError`
before anything is written. Paths read from a dataset's index file (`images.csv`,
`audios.csv`) are held to the same rule.

Zip bombs are refused with `DatasetTooLargeError`: an archive of more entries than
`RAFIKI_MAX_DATASET_ZIP_ENTRIES`, or whose members expand to more bytes than
`RAFIKI_MAX_DATASET_UNZIPPED_BYTES` all together (counted as they are really decompressed, since
an archive's directory can lie about sizes). Workers get both from the admin's settings; without
them the defaults below apply, and 0 means no limit.
"""

from __future__ import annotations

import csv
import io
import os
import random
import stat
import tempfile
import zipfile
from collections.abc import Sequence
from typing import Any

import numpy as np
from PIL import Image


class InvalidDatasetFormatException(Exception):
    """The dataset file is not in the format its task expects."""


InvalidDatasetError = InvalidDatasetFormatException


class UnsafeArchiveError(InvalidDatasetFormatException):
    """An archive member would be written outside the folder it is extracted to."""


class DatasetTooLargeError(InvalidDatasetFormatException):
    """A zip dataset has more entries, or expands to more bytes, than the limits allow."""


MAX_UNZIPPED_BYTES_VAR = "RAFIKI_MAX_DATASET_UNZIPPED_BYTES"
MAX_ZIP_ENTRIES_VAR = "RAFIKI_MAX_DATASET_ZIP_ENTRIES"
# The admin's defaults (config/default.toml).
DEFAULT_MAX_UNZIPPED_BYTES = 50 * 1024**3
DEFAULT_MAX_ZIP_ENTRIES = 200_000
_CHUNK_BYTES = 1 << 20


def _limit(var: str, default: int) -> int | None:
    """The limit in the environment variable `var`, else `default`; None when it is 0."""
    text = os.environ.get(var, "").strip()
    if not text:
        return default or None
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise ValueError(f"{var} must be a whole number, 0 for no limit; it is {text!r}")
    return value or None


class _Expansion:
    """What one archive may still expand to: every decompressed byte is counted against it."""

    def __init__(self, zip_path: str):
        self.path = zip_path
        self.max_bytes = _limit(MAX_UNZIPPED_BYTES_VAR, DEFAULT_MAX_UNZIPPED_BYTES)
        self.used = 0

    def count(self, chunk: bytes) -> bytes:
        self.used += len(chunk)
        if self.max_bytes is not None and self.used > self.max_bytes:
            raise DatasetTooLargeError(
                f"{self.path} expands to more than {self.max_bytes} bytes, the most a zip "
                f"dataset may expand to ({MAX_UNZIPPED_BYTES_VAR})"
            )
        return chunk

    def chunks(self, archive: zipfile.ZipFile, info: zipfile.ZipInfo):
        """The member's bytes, decompressed a chunk at a time and counted."""
        with archive.open(info) as src:
            while True:
                chunk = src.read(_CHUNK_BYTES)
                if not chunk:
                    return
                yield self.count(chunk)


def _inside(root: str, path: str) -> bool:
    root = os.path.realpath(root)
    path = os.path.realpath(path)
    return path == root or path.startswith(root + os.sep)


def _normalize_member(name: str) -> str:
    """`name` as a clean relative path (`a/b/c`); raises `UnsafeArchiveError` if it could leave
    the folder it is extracted to (absolute, drive letter, `..`, NUL)."""
    normalized = name.replace("\\", "/")
    if (
        normalized.startswith("/")
        or (len(normalized) >= 2 and normalized[1] == ":")
        or "\x00" in normalized
    ):
        raise UnsafeArchiveError(f"archive member {name!r} has an absolute path: refused")
    parts = [p for p in normalized.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise UnsafeArchiveError(f"archive member {name!r} leaves the target folder: refused")
    return "/".join(parts)


def _open_checked_zip(zip_path: str):
    """Opens a zip archive and checks every member; returns (archive, {clean name: info})."""
    try:
        archive = zipfile.ZipFile(zip_path, "r")
    except (zipfile.BadZipFile, OSError) as e:
        raise InvalidDatasetFormatException(f"{zip_path} is not a readable zip file: {e}") from e
    try:
        max_entries = _limit(MAX_ZIP_ENTRIES_VAR, DEFAULT_MAX_ZIP_ENTRIES)
        entries = len(archive.infolist())
        if max_entries is not None and entries > max_entries:
            raise DatasetTooLargeError(
                f"{zip_path} has {entries} entries; a zip dataset may have at most "
                f"{max_entries} ({MAX_ZIP_ENTRIES_VAR})"
            )
        members = {}
        for info in archive.infolist():
            clean = _normalize_member(info.filename)
            if stat.S_ISLNK(info.external_attr >> 16):
                raise UnsafeArchiveError(f"archive member {info.filename!r} is a link: refused")
            members[clean] = info
    except BaseException:
        archive.close()
        raise
    return (archive, members)


def safe_extract_zip(zip_path: str, dest: str) -> str:
    """Extracts the zip archive at `zip_path` into the folder `dest` (created if needed).

    Every member is checked before any is written; symbolic links are refused too. Past the
    zip limits (see the module's doc) it raises `DatasetTooLargeError`. Returns `dest`.
    """
    (archive, members) = _open_checked_zip(zip_path)
    expansion = _Expansion(zip_path)
    with archive:
        os.makedirs(dest, exist_ok=True)
        targets = []
        for clean, info in members.items():
            target = os.path.join(dest, *clean.split("/")) if clean else dest
            if not _inside(dest, target):  # e.g. through a link already in `dest`
                raise UnsafeArchiveError(
                    f"archive member {info.filename!r} leaves the target folder: refused"
                )
            targets.append((info, target))
        for info, target in targets:
            if info.is_dir():
                os.makedirs(target, exist_ok=True)
                continue
            os.makedirs(os.path.dirname(target), exist_ok=True)
            with open(target, "wb") as out:
                for chunk in expansion.chunks(archive, info):
                    out.write(chunk)
    return dest


class _DatasetArchive:
    """A checked zip archive whose members are read in memory, without extracting them."""

    def __init__(self, zip_path: str):
        self.path = zip_path
        (self._archive, self._members) = _open_checked_zip(zip_path)
        self._expansion = _Expansion(zip_path)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self._archive.close()

    def has(self, name: str) -> bool:
        return name in self._members

    def _read(self, info: zipfile.ZipInfo) -> bytes:
        return b"".join(self._expansion.chunks(self._archive, info))

    def text(self, name: str) -> str:
        try:
            return self._read(self._members[name]).decode("utf-8-sig")
        except UnicodeDecodeError as e:
            raise InvalidDatasetFormatException(f"{self.path}: {name} is not UTF-8: {e}") from e

    def read(self, relative: str, what: str) -> bytes:
        """The member at `relative` (a path read from the dataset's index file)."""
        try:
            clean = _normalize_member(relative)
        except UnsafeArchiveError:
            raise InvalidDatasetFormatException(
                f"{self.path}: {what} {relative!r} points outside the dataset archive"
            ) from None
        info = self._members.get(clean)
        if info is None or info.is_dir():
            raise InvalidDatasetFormatException(
                f"{self.path}: {what} {relative!r} is listed but missing from the archive"
            )
        return self._read(info)


def _resolve_inside(root: str, relative: str, what: str) -> str:
    try:
        clean = _normalize_member(relative)
    except UnsafeArchiveError:
        raise InvalidDatasetFormatException(
            f"{what} {relative!r} points outside the dataset archive"
        ) from None
    return os.path.join(root, *clean.split("/")) if clean else root


def _decode_image(data: bytes, name: str, mode: str | None) -> Image.Image:
    try:
        image = Image.open(io.BytesIO(data))
        image.load()
    except Exception as e:
        raise InvalidDatasetFormatException(f"cannot read image {name}: {e}") from e
    return image.convert(mode) if mode else image


def _load_pil_images(image_paths: Sequence[str], mode: str = "RGB") -> list[Image.Image]:
    images = []
    for path in image_paths:
        with open(path, "rb") as f:
            images.append(_decode_image(f.read(), path, mode))
    return images


class ModelDataset:
    """A loaded dataset: `size` samples, indexable and iterable."""

    def __init__(self, dataset_path: str):
        self.path = dataset_path
        self.size = 0

    def __getitem__(self, index):
        raise NotImplementedError()

    def __len__(self):
        return self.size

    def __iter__(self):
        for i in range(self.size):
            yield self[i]


class ImageFilesDataset(ModelDataset):
    """An IMAGE_CLASSIFICATION dataset: a .zip with `images.csv` (`path`, `class`) and images.

    Items are `(image, class)`: the image a numpy array (height x width x channels, or height x
    width for single-channel modes such as `L`), the class an int in 0..classes-1. Every image is
    resized to `image_size` x `image_size`: the first image's smaller side, capped at
    `max_image_size` and raised to `min_image_size`. `classes` is the number of classes (the
    highest class + 1).
    """

    def __init__(
        self,
        dataset_path: str,
        min_image_size: int | None = None,
        max_image_size: int | None = None,
        mode: str = "RGB",
        if_shuffle: bool = False,
    ):
        super().__init__(dataset_path)
        (pil_images, classes) = self._load(dataset_path, mode)
        (self._images, self.image_size) = self._resize(pil_images, min_image_size, max_image_size)
        self._classes = list(classes)
        self.size = len(self._images)
        self.classes = max(self._classes) + 1
        if if_shuffle:
            order = list(range(self.size))
            random.shuffle(order)
            self._images = [self._images[i] for i in order]
            self._classes = [self._classes[i] for i in order]

    def __getitem__(self, index):
        return (self._images[index], self._classes[index])

    @staticmethod
    def _load(dataset_path, mode):
        with _DatasetArchive(dataset_path) as archive:
            if not archive.has("images.csv"):
                raise InvalidDatasetFormatException(
                    f"{dataset_path}: an image dataset needs `images.csv` at the archive root"
                )
            reader = csv.DictReader(io.StringIO(archive.text("images.csv"), newline=""))
            if not reader.fieldnames or not {"path", "class"} <= set(reader.fieldnames):
                raise InvalidDatasetFormatException(
                    f"{dataset_path}: `images.csv` needs the columns `path` and `class`, "
                    f"has {reader.fieldnames}"
                )
            pil_images, classes = [], []
            for line_no, row in enumerate(reader, start=2):
                try:
                    image_class = int(row["class"])
                except (TypeError, ValueError):
                    raise InvalidDatasetFormatException(
                        f"{dataset_path}: images.csv line {line_no}: class "
                        f"{row['class']!r} is not an integer"
                    ) from None
                if image_class < 0:
                    raise InvalidDatasetFormatException(
                        f"{dataset_path}: images.csv line {line_no}: negative class"
                    )
                name = row["path"] or ""
                data = archive.read(name, "image")
                pil_images.append(_decode_image(data, name, mode))
                classes.append(image_class)
        if not pil_images:
            raise InvalidDatasetFormatException(f"{dataset_path}: the dataset has no images")
        return (pil_images, classes)

    @staticmethod
    def _resize(pil_images, min_image_size, max_image_size):
        (width, height) = pil_images[0].size
        image_size = min(width, height)
        if max_image_size is not None:
            image_size = min(image_size, max_image_size)
        if min_image_size is not None:
            image_size = max(image_size, min_image_size)
        resized = []
        for image in pil_images:
            if image.size != (image_size, image_size):
                image = image.resize((image_size, image_size))
            resized.append(np.asarray(image))
        return (resized, image_size)


class CorpusDataset(ModelDataset):
    """A POS_TAGGING dataset: a .zip with `corpus.tsv` (columns `token` and one per tag).

    A row whose token is `split_by` (by default the two characters backslash and `n`) ends a
    sentence. Items are sentences, each a list of `[token, tag_1, ..., tag_k]` with the tags as
    ints, in the order of `tags`. `tag_num_classes[i]` is the number of classes of `tags[i]`
    (highest + 1); `max_token_len` and `max_sent_len` are the longest token and sentence.
    """

    def __init__(self, dataset_path: str, tags: list[str] | None = None, split_by="\\n"):
        super().__init__(dataset_path)
        self.tags = list(tags or ["tag"])
        self._sents = self._load(dataset_path, self.tags, split_by)
        self.size = len(self._sents)
        self.tag_num_classes = [0] * len(self.tags)
        self.max_token_len = 0
        self.max_sent_len = 0
        for sent in self._sents:
            self.max_sent_len = max(self.max_sent_len, len(sent))
            for token, *token_tags in sent:
                self.max_token_len = max(self.max_token_len, len(token))
                self.tag_num_classes = [
                    max(n, t + 1) for (n, t) in zip(self.tag_num_classes, token_tags)
                ]

    def __getitem__(self, index):
        return self._sents[index]

    @staticmethod
    def _load(dataset_path, tags, split_by):
        with _DatasetArchive(dataset_path) as archive:
            if not archive.has("corpus.tsv"):
                raise InvalidDatasetFormatException(
                    f"{dataset_path}: a corpus dataset needs `corpus.tsv` at the archive root"
                )
            sents, sent = [], []
            with io.StringIO(archive.text("corpus.tsv"), newline="") as f:
                reader = csv.DictReader(f, dialect="excel-tab")
                columns = set(reader.fieldnames or [])
                missing = [c for c in ["token", *tags] if c not in columns]
                if missing:
                    raise InvalidDatasetFormatException(
                        f"{dataset_path}: corpus.tsv lacks the column(s) {', '.join(missing)}"
                    )
                for line_no, row in enumerate(reader, start=2):
                    token = row["token"]
                    if token == split_by:
                        sents.append(sent)
                        sent = []
                        continue
                    try:
                        token_tags = [int(row[t]) for t in tags]
                    except (TypeError, ValueError):
                        raise InvalidDatasetFormatException(
                            f"{dataset_path}: corpus.tsv line {line_no}: tags must be integers, "
                            f"got {[row[t] for t in tags]}"
                        ) from None
                    if any(t < 0 for t in token_tags):
                        raise InvalidDatasetFormatException(
                            f"{dataset_path}: corpus.tsv line {line_no}: negative tag"
                        )
                    sent.append([token, *token_tags])
            if sent:
                # A corpus whose last sentence has no terminator still counts that sentence.
                sents.append(sent)
        return sents


class AudioFilesDataset(ModelDataset):
    """A SPEECH_RECOGNITION dataset: a .zip with `audios.csv` and the .wav files.

    `audios.csv` has the columns `wav_filename`, `wav_filesize` and `transcript`. The archive is
    extracted to `dataset_dir` (a path, an object with `.name` such as a
    `tempfile.TemporaryDirectory`, or None for a folder that lives as long as this object).
    Items are `(wav_path, wav_filesize, transcript)` with `wav_path` absolute.
    """

    def __init__(self, dataset_path: str, dataset_dir: Any = None):
        super().__init__(dataset_path)
        if dataset_dir is None:
            self._tempdir = tempfile.TemporaryDirectory()
            dataset_dir = self._tempdir.name
        elif not isinstance(dataset_dir, (str, os.PathLike)):
            dataset_dir = dataset_dir.name
        self.dataset_dir = os.fspath(dataset_dir)
        self._rows = self._load(dataset_path, self.dataset_dir)
        self.size = len(self._rows)

    def __getitem__(self, index):
        return self._rows[index]

    @staticmethod
    def _load(dataset_path, dest):
        safe_extract_zip(dataset_path, dest)
        csv_path = os.path.join(dest, "audios.csv")
        if not os.path.isfile(csv_path):
            raise InvalidDatasetFormatException(
                f"{dataset_path}: an audio dataset needs `audios.csv` at the archive root"
            )
        rows = []
        with open(csv_path, newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            needed = {"wav_filename", "wav_filesize", "transcript"}
            if not reader.fieldnames or not needed <= set(reader.fieldnames):
                raise InvalidDatasetFormatException(
                    f"{dataset_path}: audios.csv needs the columns {', '.join(sorted(needed))}"
                )
            for line_no, row in enumerate(reader, start=2):
                path = _resolve_inside(dest, row["wav_filename"] or "", "wav file")
                if not os.path.isfile(path):
                    raise InvalidDatasetFormatException(
                        f"{dataset_path}: audios.csv line {line_no}: {row['wav_filename']} "
                        "is missing from the archive"
                    )
                try:
                    size = int(row["wav_filesize"])
                except (TypeError, ValueError):
                    raise InvalidDatasetFormatException(
                        f"{dataset_path}: audios.csv line {line_no}: wav_filesize is not an int"
                    ) from None
                rows.append((path, size, row["transcript"]))
        return rows


def _parse_cell(text: str):
    try:
        return int(text)
    except ValueError:
        pass
    try:
        return float(text)
    except ValueError:
        return text


class TabularDataset(ModelDataset):
    """A TABULAR_CLASSIFICATION / TABULAR_REGRESSION dataset: a .csv with a header row.

    Items are rows as dicts, cells parsed as int, then float, else kept as str. `features`
    default to every column but `target`; `target` defaults to the last column.
    """

    def __init__(
        self,
        dataset_path: str,
        features: list[str] | None = None,
        target: str | None = None,
    ):
        super().__init__(dataset_path)
        with open(dataset_path, newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            self.columns = list(reader.fieldnames or [])
            self._rows = [{k: _parse_cell(v) for (k, v) in row.items()} for row in reader]
        if not self.columns:
            raise InvalidDatasetFormatException(f"{dataset_path}: the CSV file has no header")
        self.target = target if target is not None else self.columns[-1]
        self.features = (
            list(features)
            if features is not None
            else [c for c in self.columns if c != self.target]
        )
        missing = [c for c in [*self.features, self.target] if c not in self.columns]
        if missing:
            raise InvalidDatasetFormatException(
                f"{dataset_path}: unknown column(s) {', '.join(missing)}; the file has "
                f"{', '.join(self.columns)}"
            )
        self.size = len(self._rows)

    def __getitem__(self, index):
        return self._rows[index]

    def get_xy(self):
        """`(X, y)`: the features as a float array (rows x features) and the target column."""
        try:
            x = np.array([[float(r[c]) for c in self.features] for r in self._rows], dtype=float)
        except (TypeError, ValueError) as e:
            raise InvalidDatasetFormatException(
                f"{self.path}: the features must be numeric: {e}"
            ) from None
        return (
            x.reshape(len(self._rows), len(self.features)),
            [r[self.target] for r in self._rows],
        )


class DatasetUtils:
    """Dataset helpers; use the global `rafiki.model.dataset` (also `utils.dataset`)."""

    def load_dataset_of_image_files(
        self,
        dataset_path: str,
        min_image_size: int | None = None,
        max_image_size: int | None = None,
        mode: str = "RGB",
        if_shuffle: bool = False,
    ) -> ImageFilesDataset:
        """Loads an IMAGE_CLASSIFICATION dataset (see `ImageFilesDataset`)."""
        return ImageFilesDataset(
            dataset_path,
            min_image_size=min_image_size,
            max_image_size=max_image_size,
            mode=mode,
            if_shuffle=if_shuffle,
        )

    def load_dataset_of_corpus(
        self, dataset_path: str, tags: list[str] | None = None, split_by: str = "\\n"
    ) -> CorpusDataset:
        """Loads a POS_TAGGING dataset (see `CorpusDataset`)."""
        return CorpusDataset(dataset_path, tags=tags, split_by=split_by)

    def load_dataset_of_audio_files(self, dataset_path: str, dataset_dir: Any = None):
        """Loads a SPEECH_RECOGNITION dataset (see `AudioFilesDataset`)."""
        return AudioFilesDataset(dataset_path, dataset_dir)

    def load_dataset_of_tabular(
        self,
        dataset_path: str,
        features: list[str] | None = None,
        target: str | None = None,
    ) -> TabularDataset:
        """Loads a TABULAR_* dataset (see `TabularDataset`)."""
        return TabularDataset(dataset_path, features=features, target=target)

    def extract_zip(self, zip_path: str, dest: str) -> str:
        """Extracts a zip archive safely (see `safe_extract_zip`)."""
        return safe_extract_zip(zip_path, dest)

    def normalize_images(self, images, mean=None, std=None):
        """Scales images to [0, 1] and normalises them per channel.

        `mean` and `std` (per channel) are computed from `images` when None.
        Returns `(images, mean, std)`.
        """
        if len(images) == 0:
            return (images, mean, std)
        images = np.asarray(images, dtype=np.float64) / 255
        axes = tuple(range(images.ndim - 1)) if images.ndim == 4 else tuple(range(images.ndim))
        if mean is None:
            mean = np.mean(images, axis=axes).tolist()
        if std is None:
            std = np.std(images, axis=axes).tolist()
        std_arr = np.asarray(std, dtype=np.float64)
        std_arr = np.where(std_arr == 0, 1.0, std_arr)
        images = (images - np.asarray(mean, dtype=np.float64)) / std_arr
        return (images, mean, std)

    def transform_images(self, images, image_size: int | None = None, mode: str | None = None):
        """Resizes (to `image_size` x `image_size`) and/or converts (to Pillow `mode`) images.

        `images` is a list or array of images (height x width [x channels], values 0..255).
        Returns a numpy array (N x size x size [x channels]).
        """
        pil_images = []
        for image in images:
            array = np.asarray(image)
            if array.dtype != np.uint8:
                array = np.clip(np.rint(array.astype(np.float64)), 0, 255).astype(np.uint8)
            if array.ndim == 3 and array.shape[2] == 1:
                array = array[:, :, 0]
            pil_images.append(Image.fromarray(array))
        if image_size is not None:
            pil_images = [x.resize((image_size, image_size)) for x in pil_images]
        if mode is not None:
            pil_images = [x.convert(mode) for x in pil_images]
        return np.asarray([np.asarray(x) for x in pil_images])

    def load_images(self, image_paths: list[str], mode: str = "RGB") -> np.ndarray:
        """Loads images of the same size from files: a numpy array (N x H x W [x channels])."""
        return np.asarray([np.asarray(x) for x in _load_pil_images(image_paths, mode=mode)])


__all__ = [
    "AudioFilesDataset",
    "CorpusDataset",
    "DatasetTooLargeError",
    "DatasetUtils",
    "ImageFilesDataset",
    "InvalidDatasetError",
    "InvalidDatasetFormatException",
    "ModelDataset",
    "TabularDataset",
    "UnsafeArchiveError",
    "safe_extract_zip",
]
