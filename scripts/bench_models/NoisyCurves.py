"""A model for scripts/bench-pruning.sh: a training loop whose validation accuracy follows a
learning curve set by its knobs, with noise, sleeping a little per epoch, so that pruning can be
measured on a small, busy machine.

The curve is `A * (1 - exp(-epoch / tau)) + noise`: the asymptote A is best at a learning rate
near 10^-1.5 and a width near 0.7; the speed 1/tau grows with the learning rate, so large
learning rates lead early and end lower, and small ones start slowly and end higher: the curves
cross, as real ones do. The noise (sd 0.02 per epoch) is seeded from the knobs. The score is
the noiseless curve at the last epoch trained.
"""

import math
import random
import time

from rafiki.model import BaseModel, FloatKnob, logger

EPOCHS = 27


def curve(log_lr, width, epoch):
    """The noiseless accuracy after `epoch` epochs."""
    asymptote = 0.9 - 0.12 * (log_lr + 1.5) ** 2 - 0.1 * (width - 0.7) ** 2
    tau = 2 * 10 ** (-0.6 * (log_lr + 1.5)) * (1 + width)
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

    def train(self, dataset_path, shared_params=None, **train_args):
        seconds = float(train_args.get("seconds_per_epoch", 0.04))
        noise = random.Random(f"{self.log_lr:.6f}/{self.width:.6f}")
        for epoch in range(1, EPOCHS + 1):
            time.sleep(seconds)
            self.epochs = epoch
            acc = curve(self.log_lr, self.width, epoch) + noise.gauss(0, 0.02)
            logger.log(val_acc=acc, epoch=epoch)

    def evaluate(self, dataset_path):
        return curve(self.log_lr, self.width, self.epochs)

    def predict(self, queries):
        return [0 for _ in queries]

    def dump_parameters(self):
        return {"epochs": self.epochs}

    def load_parameters(self, params):
        self.epochs = int(params["epochs"])
