"""Training: :func:`train` and what it is made of.

spec    TrainSpec: the settings of a run, validated once (shared with sweeps)
loop    the loop: batches, forward/backward, clipping, updates, divergence per member
record  the Recorder that turns the rows of a run into its Dataset

(A package named ``training`` so that the function ``nr.train`` does not shadow it.)
"""

from .loop import run, train, train_members
from .spec import DIAGNOSTICS, TrainSpec, schedule

__all__ = ["DIAGNOSTICS", "TrainSpec", "run", "schedule", "train", "train_members"]
