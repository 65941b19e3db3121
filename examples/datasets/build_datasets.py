"""Builds small train/validation datasets for the example models, offline.

The data comes from inside installed packages (scikit-learn's bundled digits, wine and diabetes
sets) or is generated (a tagged corpus for POS tagging); nothing is downloaded. The files follow
SDK.md "Task formats":

    python examples/datasets/build_datasets.py --out data

writes `data/digits_{train,val}.zip`, `data/wine_{train,val}.csv`,
`data/diabetes_{train,val}.csv` and `data/pos_{train,val}.zip`.
"""

from __future__ import annotations

import argparse
import csv
import io
import os
import random
import zipfile

import numpy as np
from PIL import Image

SEED = 0

# The POS tag set of the generated corpus; a tag's class is its index.
POS_TAGS = ["DET", "NOUN", "VERB", "ADJ", "ADV", "PRON", "PREP", "PUNCT"]

_LEXICON = {
    "DET": ["the", "a", "every", "this", "that"],
    "NOUN": ["dog", "cat", "park", "light", "run", "book", "city", "river", "song", "plan"],
    "VERB": ["sees", "likes", "walks", "run", "reads", "light", "plans", "sings", "crosses"],
    "ADJ": ["big", "small", "light", "quiet", "old", "bright", "green"],
    "ADV": ["quickly", "often", "slowly", "today", "well"],
    "PRON": ["she", "he", "they", "it", "we"],
    "PREP": ["in", "near", "over", "with", "after"],
    "PUNCT": [".", "!", "?"],
}


def _split(n: int, val_fraction: float = 0.2):
    order = np.random.RandomState(SEED).permutation(n)
    n_val = int(round(n * val_fraction))
    return (order[n_val:], order[:n_val])


def _write_image_zip(path: str, images: np.ndarray, labels: np.ndarray):
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        index = io.StringIO()
        writer = csv.writer(index, lineterminator="\n")
        writer.writerow(["path", "class"])
        for i, (image, label) in enumerate(zip(images, labels)):
            name = f"images/{i:05d}.png"
            buf = io.BytesIO()
            Image.fromarray(image).save(buf, format="PNG")
            z.writestr(name, buf.getvalue())
            writer.writerow([name, int(label)])
        z.writestr("images.csv", index.getvalue())


def build_image_classification(out_dir: str) -> dict[str, str]:
    """scikit-learn's 8x8 digits as grayscale PNGs: `digits_train.zip`, `digits_val.zip`."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    # Pixel values are 0..16; scale them to the usual 0..255.
    images = np.clip(digits.images * 16, 0, 255).astype(np.uint8)
    (train, val) = _split(len(images))
    paths = {
        "train": os.path.join(out_dir, "digits_train.zip"),
        "val": os.path.join(out_dir, "digits_val.zip"),
    }
    _write_image_zip(paths["train"], images[train], digits.target[train])
    _write_image_zip(paths["val"], images[val], digits.target[val])
    return paths


def _write_csv(path: str, columns: list[str], rows):
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(columns)
        writer.writerows(rows)


def _build_tabular(out_dir: str, name: str, bunch, target_cast) -> dict[str, str]:
    features = [str(c) for c in bunch.feature_names]
    (train, val) = _split(len(bunch.data))
    paths = {
        "train": os.path.join(out_dir, f"{name}_train.csv"),
        "val": os.path.join(out_dir, f"{name}_val.csv"),
    }
    for split, idx in (("train", train), ("val", val)):
        rows = [
            [repr(float(x)) for x in bunch.data[i]] + [target_cast(bunch.target[i])] for i in idx
        ]
        _write_csv(paths[split], [*features, "target"], rows)
    return paths


def build_tabular_classification(out_dir: str) -> dict[str, str]:
    """scikit-learn's wine set (3 classes): `wine_train.csv`, `wine_val.csv`."""
    from sklearn.datasets import load_wine

    return _build_tabular(out_dir, "wine", load_wine(), lambda y: int(y))


def build_tabular_regression(out_dir: str) -> dict[str, str]:
    """scikit-learn's diabetes set (a float target): `diabetes_train.csv`, `diabetes_val.csv`."""
    from sklearn.datasets import load_diabetes

    return _build_tabular(out_dir, "diabetes", load_diabetes(), lambda y: repr(float(y)))


def generate_tagged_sentences(count: int, rng: random.Random) -> list[list[tuple[str, str]]]:
    """Sentences of (token, tag) from a small grammar with ambiguous words."""

    def word(tag):
        return (rng.choice(_LEXICON[tag]), tag)

    def noun_phrase():
        phrase = [word("DET")]
        if rng.random() < 0.5:
            phrase.append(word("ADJ"))
        phrase.append(word("NOUN"))
        return phrase

    sentences = []
    for _ in range(count):
        subject = [word("PRON")] if rng.random() < 0.3 else noun_phrase()
        sentence = subject + [word("VERB")]
        if rng.random() < 0.7:
            sentence += noun_phrase()
        if rng.random() < 0.4:
            sentence.append(word("ADV"))
        if rng.random() < 0.4:
            sentence += [word("PREP"), *noun_phrase()]
        sentence.append(word("PUNCT"))
        if rng.random() < 0.5:
            sentence[0] = (sentence[0][0].capitalize(), sentence[0][1])
        sentences.append(sentence)
    return sentences


def _write_corpus_zip(path: str, sentences):
    index = io.StringIO()
    writer = csv.writer(index, dialect="excel-tab", lineterminator="\n")
    writer.writerow(["token", "tag"])
    for sentence in sentences:
        for token, tag in sentence:
            writer.writerow([token, POS_TAGS.index(tag)])
        # A row whose token is the two characters `\n` ends the sentence.
        writer.writerow(["\\n", ""])
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("corpus.tsv", index.getvalue())


def build_pos_tagging(out_dir: str, train_count: int = 600, val_count: int = 150):
    """A generated tagged corpus: `pos_train.zip`, `pos_val.zip`."""
    rng = random.Random(SEED)
    paths = {
        "train": os.path.join(out_dir, "pos_train.zip"),
        "val": os.path.join(out_dir, "pos_val.zip"),
    }
    _write_corpus_zip(paths["train"], generate_tagged_sentences(train_count, rng))
    _write_corpus_zip(paths["val"], generate_tagged_sentences(val_count, rng))
    return paths


BUILDERS = {
    "IMAGE_CLASSIFICATION": build_image_classification,
    "TABULAR_CLASSIFICATION": build_tabular_classification,
    "TABULAR_REGRESSION": build_tabular_regression,
    "POS_TAGGING": build_pos_tagging,
}


def build_all(out_dir: str) -> dict[str, dict[str, str]]:
    """Builds every example dataset into `out_dir`; returns task -> {'train', 'val'} paths."""
    os.makedirs(out_dir, exist_ok=True)
    return {task: build(out_dir) for (task, build) in BUILDERS.items()}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default="data", help="folder to write the datasets to")
    args = parser.parse_args()
    for task, paths in build_all(args.out).items():
        print(f"{task}: {paths['train']}, {paths['val']}")


if __name__ == "__main__":
    main()
