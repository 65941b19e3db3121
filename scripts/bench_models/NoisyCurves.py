"""A model for scripts/bench-pruning.sh: a training loop whose validation accuracy follows a
learning curve set by its knobs, with noise, sleeping a little per epoch, so that pruning can be
measured on a small, busy machine.

The curve is `A * (1 - exp(-epoch / tau)) + noise`: the asymptote A is best (0.9) at a learning
rate near 10^-1.5 and a width near 0.7; the speed 1/tau grows with the learning rate, so large
learning rates lead early and end lower, and small ones start slowly and end higher: the curves
cross, as real ones do. How late they cross is the train argument `crossing`:

- `late` (the default): tau falls fourfold per decade of learning rate and grows with the width.
  A learning rate half a decade above the best leads the best curve until epoch 11 of 27 (a
  decade above until epoch 6), and the near-best configurations sit in the middle of random
  others at epochs 1 and 3 (most of them in the top quarter from epoch 9).
- `early`: tau falls 1.6-fold per decade of learning rate and is least at the best width.
  Half a decade above the best leads until epoch 4, a decade above until epoch 2; from epoch 3
  the near-best configurations are in the top quarter of random others.

The noise (sd 0.02 per epoch, as a validation set of a few hundred examples gives) is seeded
from the knobs. The score `evaluate` returns is the train argument `score`: `last`, the value
logged at the last epoch trained (what evaluating on the same validation set gives), or `exact`
(the default), the noiseless curve there.
"""

import math
import random
import time

from rafiki.model import BaseModel, FloatKnob, logger

EPOCHS = 27


def curve(log_lr, width, epoch, crossing="late"):
    """The noiseless accuracy after `epoch` epochs."""
    asymptote = 0.9 - 0.12 * (log_lr + 1.5) ** 2 - 0.1 * (width - 0.7) ** 2
    if crossing == "late":
        tau = 2 * 10 ** (-0.6 * (log_lr + 1.5)) * (1 + width)
    elif crossing == "early":
        tau = 1.5 * 10 ** (-0.2 * (log_lr + 1.5)) * (1 + 2 * (width - 0.7) ** 2)
    else:
        raise ValueError(f"crossing must be late or early, not {crossing!r}")
    return asymptote * (1 - math.exp(-epoch / tau))


class NoisyCurves(BaseModel):
    @staticmethod
    def get_knob_config():
        return {"lr": FloatKnob(1e-3, 1.0, is_exp=True), "width": FloatKnob(0.0, 1.0)}

    def __init__(self, **knobs):
        super().__init__(**knobs)
        self.log_lr = math.log10(knobs["lr"])
        self.width = knobs["width"]
        self.epochs = 0
        self.crossing = "late"
        self.score = "exact"
        self.last_acc = None

    def train(self, dataset_path, shared_params=None, **train_args):
        seconds = float(train_args.get("seconds_per_epoch", 0.04))
        self.crossing = train_args.get("crossing", "late")
        self.score = train_args.get("score", "exact")
        noise = random.Random(f"{self.log_lr:.6f}/{self.width:.6f}")
        for epoch in range(1, EPOCHS + 1):
            time.sleep(seconds)
            self.epochs = epoch
            acc = curve(self.log_lr, self.width, epoch, self.crossing)
            acc += noise.gauss(0, 0.02)
            self.last_acc = acc
            logger.log(val_acc=acc, epoch=epoch)

    def evaluate(self, dataset_path):
        if self.score == "last":
            return self.last_acc
        return curve(self.log_lr, self.width, self.epochs, self.crossing)

    def predict(self, queries):
        return [0 for _ in queries]

    def dump_parameters(self):
        return {"epochs": self.epochs}

    def load_parameters(self, params):
        self.epochs = int(params["epochs"])
