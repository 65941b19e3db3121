"""POS_TAGGING with a bigram hidden Markov model and Viterbi decoding (numpy only).

Transition and emission probabilities are add-`smoothing` estimates; words seen fewer than
`min_count` times in training share one unknown-word emission.
"""

import argparse
import json
from collections import Counter

import numpy as np

from rafiki.model import (
    BaseModel,
    CategoricalKnob,
    FixedKnob,
    FloatKnob,
    IntegerKnob,
    logger,
    utils,
)
from rafiki.model.dev import test_model_class


class BigramHmm(BaseModel):
    @staticmethod
    def get_knob_config():
        return {
            "smoothing": FloatKnob(1e-3, 1.0, is_exp=True),
            "min_count": IntegerKnob(1, 3),
            "lowercase": CategoricalKnob([True, False]),
            "unknown_token": FixedKnob("<unk>"),
        }

    def __init__(self, **knobs):
        super().__init__(**knobs)
        self._knobs = knobs

    def train(self, dataset_path, shared_params=None, **train_args):
        dataset = utils.dataset.load_dataset_of_corpus(dataset_path)
        sents = [[(self._norm(token), tag) for (token, tag) in sent] for sent in dataset]
        counts = Counter(token for sent in sents for (token, _) in sent)
        vocab = sorted(t for (t, c) in counts.items() if c >= self._knobs["min_count"])
        self._vocab = [self._knobs["unknown_token"], *vocab]
        self._index = {w: i for (i, w) in enumerate(self._vocab)}
        num_tags = dataset.tag_num_classes[0]
        k = self._knobs["smoothing"]
        # Row 0 of `transitions` is the start state; row t+1 is "after tag t".
        trans = np.full((num_tags + 1, num_tags), k)
        emits = np.full((num_tags, len(self._vocab)), k)
        for sent in sents:
            prev = 0
            for token, tag in sent:
                trans[prev, tag] += 1
                emits[tag, self._word(token)] += 1
                prev = tag + 1
        self._log_trans = np.log(trans / trans.sum(axis=1, keepdims=True))
        self._log_emits = np.log(emits / emits.sum(axis=1, keepdims=True))
        logger.log(
            f"{dataset.size} sentences, {len(self._vocab)} words, {num_tags} tags",
            train_accuracy=self._accuracy(dataset),
        )

    def evaluate(self, dataset_path):
        return self._accuracy(utils.dataset.load_dataset_of_corpus(dataset_path))

    def predict(self, queries):
        return [self._viterbi([str(t) for t in tokens]) for tokens in queries]

    def dump_parameters(self):
        return {
            "log_transitions": self._log_trans,
            "log_emissions": self._log_emits,
            "vocab": json.dumps(self._vocab),
        }

    def load_parameters(self, params):
        self._log_trans = params["log_transitions"]
        self._log_emits = params["log_emissions"]
        self._vocab = json.loads(params["vocab"])
        self._index = {w: i for (i, w) in enumerate(self._vocab)}

    def _norm(self, token):
        return token.lower() if self._knobs["lowercase"] else token

    def _word(self, token):
        return self._index.get(token, 0)

    def _accuracy(self, dataset):
        right = total = 0
        for sent in dataset:
            predicted = self._viterbi([token for (token, _) in sent])
            right += sum(int(p == tag) for (p, (_, tag)) in zip(predicted, sent))
            total += len(sent)
        return right / total if total else 0.0

    def _viterbi(self, tokens):
        if not tokens:
            return []
        words = [self._word(self._norm(t)) for t in tokens]
        score = self._log_trans[0] + self._log_emits[:, words[0]]
        back = []
        for w in words[1:]:
            # cand[i, j]: best path ending in tag i, then tag j.
            cand = score[:, None] + self._log_trans[1:]
            back.append(cand.argmax(axis=0))
            score = cand.max(axis=0) + self._log_emits[:, w]
        tags = [int(score.argmax())]
        for pointers in reversed(back):
            tags.append(int(pointers[tags[-1]]))
        return tags[::-1]


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--train_path", default="data/pos_train.zip")
    parser.add_argument("--val_path", default="data/pos_val.zip")
    args = parser.parse_args()
    test_model_class(
        model_file_path=__file__,
        model_class="BigramHmm",
        task="POS_TAGGING",
        dependencies={},
        train_dataset_path=args.train_path,
        val_dataset_path=args.val_path,
        queries=[["The", "dog", "sees", "a", "light", "park", "."], ["They", "run", "often", "!"]],
    )
