import csv
import io
import os
import random
import stat
import wave
import zipfile
from collections import Counter

import numpy as np
import pytest
from PIL import Image

from rafiki.model import (
    CorpusDataset,
    DatasetTooLargeError,
    ImageFilesDataset,
    InvalidDatasetFormatException,
    UnsafeArchiveError,
    dataset,
    safe_extract_zip,
    utils,
)
from rafiki.model.dataset import DEFAULT_MAX_UNZIPPED_BYTES


def rows_of(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_image_files_dataset_loads_the_digits_builder_output(example_datasets):
    path = example_datasets["IMAGE_CLASSIFICATION"]["train"]
    with zipfile.ZipFile(path) as z:
        index = list(csv.DictReader(io.StringIO(z.read("images.csv").decode())))
    ds = utils.dataset.load_dataset_of_image_files(path, mode="L")
    assert isinstance(ds, ImageFilesDataset)
    assert ds.size == len(ds) == len(index) > 1000
    assert ds.classes == 10 and ds.image_size == 8
    (image, image_class) = ds[0]
    assert image.shape == (8, 8) and image.dtype == np.uint8
    assert image_class == int(index[0]["class"])
    assert [c for (_, c) in ds] == [int(r["class"]) for r in index]


def test_image_files_dataset_resizes_and_converts(example_datasets):
    path = example_datasets["IMAGE_CLASSIFICATION"]["val"]
    rgb = dataset.load_dataset_of_image_files(path)
    assert rgb[0][0].shape == (8, 8, 3)
    small = dataset.load_dataset_of_image_files(path, max_image_size=4, mode="L")
    assert small.image_size == 4 and small[0][0].shape == (4, 4)
    big = dataset.load_dataset_of_image_files(path, min_image_size=16, mode="L")
    assert big.image_size == 16 and big[0][0].shape == (16, 16)
    shuffled = dataset.load_dataset_of_image_files(path, mode="L", if_shuffle=True)
    assert Counter(c for (_, c) in shuffled) == Counter(c for (_, c) in rgb)


def test_corpus_dataset_loads_the_pos_builder_output(example_datasets, builders):
    path = example_datasets["POS_TAGGING"]["train"]
    expected = builders.generate_tagged_sentences(600, random.Random(builders.SEED))
    ds = utils.dataset.load_dataset_of_corpus(path)
    assert isinstance(ds, CorpusDataset)
    assert ds.tags == ["tag"]
    assert ds.size == len(expected) == 600
    assert ds.tag_num_classes == [len(builders.POS_TAGS)]
    assert ds.max_sent_len == max(len(s) for s in expected)
    assert ds.max_token_len == max(len(t) for s in expected for (t, _) in s)
    assert ds[0] == [[t, builders.POS_TAGS.index(tag)] for (t, tag) in expected[0]]


def write_zip(path, members):
    with zipfile.ZipFile(path, "w") as z:
        for name, data in members.items():
            z.writestr(name, data)
    return str(path)


def test_corpus_with_several_tags_and_no_final_terminator(tmp_path):
    tsv = "token\tpos\tner\nI\t0\t0\nrun\t1\t0\n\\n\t\t\nBob\t2\t1\nsmiles\t1\t0\n"
    path = write_zip(tmp_path / "c.zip", {"corpus.tsv": tsv})
    ds = dataset.load_dataset_of_corpus(path, tags=["pos", "ner"])
    assert ds.size == 2
    assert ds[0] == [["I", 0, 0], ["run", 1, 0]]
    assert ds[1] == [["Bob", 2, 1], ["smiles", 1, 0]]
    assert ds.tag_num_classes == [3, 2]
    with pytest.raises(InvalidDatasetFormatException, match="lacks the column"):
        dataset.load_dataset_of_corpus(path, tags=["tag"])


def test_corpus_split_by_can_be_changed(tmp_path):
    tsv = "token\ttag\na\t0\n<eos>\t0\nb\t1\n"
    path = write_zip(tmp_path / "c.zip", {"corpus.tsv": tsv})
    assert dataset.load_dataset_of_corpus(path, split_by="<eos>").size == 2
    plain = dataset.load_dataset_of_corpus(path)  # `<eos>` is then a plain token
    assert plain.size == 1 and plain[0][1] == ["<eos>", 0]


def test_tabular_datasets_load_the_builders_output(example_datasets):
    path = example_datasets["TABULAR_CLASSIFICATION"]["train"]
    rows = rows_of(path)
    ds = dataset.load_dataset_of_tabular(path, target="target")
    assert ds.size == len(rows) and ds.target == "target"
    assert ds.features == [c for c in rows[0] if c != "target"] and len(ds.features) == 13
    (x, y) = ds.get_xy()
    assert x.shape == (len(rows), 13) and x.dtype == np.float64
    assert set(y) == {0, 1, 2}
    reg = dataset.load_dataset_of_tabular(example_datasets["TABULAR_REGRESSION"]["val"])
    (x, y) = reg.get_xy()
    assert reg.target == "target" and x.shape[1] == 10
    assert all(isinstance(v, float) for v in y)
    some = dataset.load_dataset_of_tabular(path, features=["alcohol", "hue"], target="target")
    assert some.get_xy()[0].shape == (len(rows), 2)
    with pytest.raises(InvalidDatasetFormatException, match="unknown column"):
        dataset.load_dataset_of_tabular(path, features=["nope"], target="target")


def make_wav(seconds=0.1, rate=16000):
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(b"\x00\x01" * int(seconds * rate))
    return buf.getvalue()


def test_audio_files_dataset(tmp_path):
    a, b = make_wav(), make_wav(0.2)
    index = (
        "wav_filename,wav_filesize,transcript\n"
        f"wav/a.wav,{len(a)},hello world\nb.wav,{len(b)},bye\n"
    )
    path = write_zip(tmp_path / "s.zip", {"audios.csv": index, "wav/a.wav": a, "b.wav": b})
    out = tmp_path / "out"
    ds = dataset.load_dataset_of_audio_files(path, str(out))
    assert ds.size == 2
    (wav_path, size, transcript) = ds[0]
    assert wav_path == os.path.join(str(out), "wav", "a.wav") and size == len(a)
    assert transcript == "hello world"
    with wave.open(ds[1][0]) as w:
        assert w.getframerate() == 16000
    # Without a folder the dataset keeps its own.
    own = dataset.load_dataset_of_audio_files(path)
    assert os.path.isfile(own[0][0])


@pytest.mark.parametrize(
    "evil",
    ["../evil.txt", "a/../../evil.txt", "/tmp/rafiki-evil.txt", "C:/evil.txt", "..\\evil.txt"],
)
def test_archive_members_that_leave_the_target_folder_are_refused(tmp_path, evil):
    path = write_zip(tmp_path / "bad.zip", {"ok.txt": "fine", evil: "gotcha"})
    dest = tmp_path / "dest" / "inner"
    with pytest.raises(UnsafeArchiveError, match="refused"):
        safe_extract_zip(path, str(dest))
    # Nothing was written, not even the harmless member before the bad one.
    assert not (dest / "ok.txt").exists()
    assert not (tmp_path / "dest" / "evil.txt").exists()
    assert not os.path.exists("/tmp/rafiki-evil.txt")


def test_symlink_members_are_refused(tmp_path):
    path = tmp_path / "link.zip"
    with zipfile.ZipFile(path, "w") as z:
        info = zipfile.ZipInfo("link")
        info.external_attr = (stat.S_IFLNK | 0o777) << 16
        z.writestr(info, "/etc/passwd")
    with pytest.raises(UnsafeArchiveError, match="link"):
        safe_extract_zip(str(path), str(tmp_path / "dest"))


def test_loaders_refuse_unsafe_archives(tmp_path):
    path = write_zip(tmp_path / "bad.zip", {"corpus.tsv": "token\ttag\n", "../x": "y"})
    with pytest.raises(UnsafeArchiveError):
        dataset.load_dataset_of_corpus(path)


def test_safe_archives_extract_completely(tmp_path):
    path = write_zip(tmp_path / "ok.zip", {"a/b/c.txt": "deep", "./d.txt": "dot", "e/": ""})
    dest = tmp_path / "dest"
    safe_extract_zip(path, str(dest))
    assert (dest / "a" / "b" / "c.txt").read_text() == "deep"
    assert (dest / "d.txt").read_text() == "dot"
    assert (dest / "e").is_dir()


def png(color=(255, 0, 0), size=(4, 4)):
    buf = io.BytesIO()
    Image.new("RGB", size, color).save(buf, format="PNG")
    return buf.getvalue()


@pytest.mark.parametrize(
    ("members", "fragment"),
    [
        ({"x.txt": "no index"}, "needs `images.csv`"),
        ({"images.csv": "file,label\n"}, "needs the columns `path` and `class`"),
        ({"images.csv": "path,class\n"}, "has no images"),
        ({"images.csv": "path,class\na.png,cat\n", "a.png": png()}, "is not an integer"),
        ({"images.csv": "path,class\nmissing.png,0\n"}, "missing from the archive"),
        ({"images.csv": "path,class\n../../etc/passwd,0\n"}, "outside the dataset archive"),
        ({"images.csv": "path,class\na.png,0\n", "a.png": b"not an image"}, "cannot read image"),
    ],
)
def test_broken_image_datasets_fail_with_a_clear_error(tmp_path, members, fragment):
    path = write_zip(tmp_path / "d.zip", members)
    with pytest.raises(InvalidDatasetFormatException, match=fragment):
        dataset.load_dataset_of_image_files(path)


def test_a_file_that_is_not_a_zip_is_refused(tmp_path):
    path = tmp_path / "x.zip"
    path.write_text("plain text")
    with pytest.raises(InvalidDatasetFormatException, match="not a readable zip"):
        dataset.load_dataset_of_image_files(str(path))


def test_image_helpers(tmp_path):
    paths = []
    for i, color in enumerate([(255, 0, 0), (0, 0, 255)]):
        p = tmp_path / f"{i}.png"
        p.write_bytes(png(color))
        paths.append(str(p))
    images = dataset.load_images(paths)
    assert images.shape == (2, 4, 4, 3)
    assert images[0, 0, 0].tolist() == [255, 0, 0]
    gray = dataset.load_images(paths, mode="L")
    assert gray.shape == (2, 4, 4)

    resized = dataset.transform_images(images.tolist(), image_size=2, mode="L")
    assert resized.shape == (2, 2, 2) and resized.dtype == np.uint8

    (normed, mean, std) = dataset.normalize_images(images)
    assert normed.shape == images.shape and len(mean) == 3 and len(std) == 3
    assert np.allclose(normed.reshape(-1, 3).mean(axis=0), 0)
    (again, mean2, std2) = dataset.normalize_images(images, mean=mean, std=std)
    assert np.allclose(again, normed) and mean2 == mean


def write_deflated_zip(path, members):
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as z:
        for name, data in members.items():
            z.writestr(name, data)
    return str(path)


def test_a_zip_that_expands_past_the_limit_is_refused_on_the_bytes_really_extracted(
    tmp_path, monkeypatch
):
    monkeypatch.setenv("RAFIKI_MAX_DATASET_UNZIPPED_BYTES", str(3 << 20))
    # 8 MiB of zeros weigh a few KiB deflated.
    bomb = write_deflated_zip(tmp_path / "bomb.zip", {"a": bytes(4 << 20), "b": bytes(4 << 20)})
    assert os.path.getsize(bomb) < 64 * 1024
    dest = tmp_path / "dest"
    with pytest.raises(DatasetTooLargeError, match="RAFIKI_MAX_DATASET_UNZIPPED_BYTES") as e:
        safe_extract_zip(bomb, str(dest))
    assert str(3 << 20) in str(e.value)
    # Extraction stopped at the limit rather than writing everything.
    written = sum(f.stat().st_size for f in dest.rglob("*") if f.is_file())
    assert written <= 3 << 20
    # Loaders that read members in memory count the same way.
    corpus = write_deflated_zip(tmp_path / "corpus.zip", {"corpus.tsv": "token\ttag\n" * (1 << 19)})
    with pytest.raises(DatasetTooLargeError):
        dataset.load_dataset_of_corpus(corpus)
    images = {"images.csv": "path,class\n" + "a.png,0\n" * 3, "a.png": png() + bytes(2 << 20)}
    image_zip = write_deflated_zip(tmp_path / "images.zip", images)
    with pytest.raises(DatasetTooLargeError):
        dataset.load_dataset_of_image_files(image_zip)


def test_a_zip_of_more_entries_than_the_limit_is_refused(tmp_path, monkeypatch):
    monkeypatch.setenv("RAFIKI_MAX_DATASET_ZIP_ENTRIES", "3")
    path = write_zip(tmp_path / "many.zip", {f"{i}.txt": "x" for i in range(4)})
    with pytest.raises(DatasetTooLargeError, match=r"4 entries.*at most 3"):
        safe_extract_zip(path, str(tmp_path / "dest"))
    assert not (tmp_path / "dest").exists(), "nothing is extracted"
    with pytest.raises(DatasetTooLargeError, match="RAFIKI_MAX_DATASET_ZIP_ENTRIES"):
        dataset.load_dataset_of_corpus(path)
    ok = write_zip(tmp_path / "few.zip", {f"{i}.txt": "x" for i in range(3)})
    safe_extract_zip(ok, str(tmp_path / "ok"))
    assert len(list((tmp_path / "ok").iterdir())) == 3


def test_zip_limits_come_from_the_environment_with_defaults(tmp_path, monkeypatch):
    path = write_deflated_zip(tmp_path / "z.zip", {"a": bytes(2 << 20)})
    monkeypatch.delenv("RAFIKI_MAX_DATASET_UNZIPPED_BYTES", raising=False)
    monkeypatch.delenv("RAFIKI_MAX_DATASET_ZIP_ENTRIES", raising=False)
    assert DEFAULT_MAX_UNZIPPED_BYTES == 50 * 1024**3
    safe_extract_zip(path, str(tmp_path / "default"))
    monkeypatch.setenv("RAFIKI_MAX_DATASET_UNZIPPED_BYTES", str(1 << 20))
    with pytest.raises(DatasetTooLargeError):
        safe_extract_zip(path, str(tmp_path / "limited"))
    # 0 means no limit.
    monkeypatch.setenv("RAFIKI_MAX_DATASET_UNZIPPED_BYTES", "0")
    monkeypatch.setenv("RAFIKI_MAX_DATASET_ZIP_ENTRIES", "0")
    safe_extract_zip(path, str(tmp_path / "unlimited"))
    monkeypatch.setenv("RAFIKI_MAX_DATASET_ZIP_ENTRIES", "lots")
    with pytest.raises(ValueError, match="RAFIKI_MAX_DATASET_ZIP_ENTRIES"):
        safe_extract_zip(path, str(tmp_path / "bad"))
