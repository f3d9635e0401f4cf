"""numrnn.training.spec: the settings of a run, validated once for nr.train and sweeps."""

import numpy as np
import pytest

from numrnn.optim import Adam
from numrnn.schedules import CosineAnnealing
from numrnn.training import TrainSpec, schedule


def test_defaults_are_resolved_from_steps():
    spec = TrainSpec(100, 8, ("adam", {"lr": 1e-3}))
    assert (spec.record_every, spec.eval_every, spec.diagnostics_every) == (1, 5, 10)
    plan = spec.plan()
    assert plan["recorded"].tolist() == list(range(101))
    assert plan["eval"].tolist() == list(range(0, 101, 5))
    assert plan["diagnostics"].tolist() == []
    plan = TrainSpec(10, 2, ("sgd", {"lr": 1.0}), record_every=4, eval_every=3,
                     diagnostics=("grad_norm",), diagnostics_every=5).plan()  # fmt: skip
    assert plan["eval"].tolist() == [0, 3, 6, 9, 10]
    assert plan["diagnostics"].tolist() == [0, 5, 10]
    assert plan["recorded"].tolist() == [0, 3, 4, 5, 6, 8, 9, 10]
    for k, v in schedule(10, 4, 3, 5, True).items():
        np.testing.assert_array_equal(v, plan[k])


def test_optimizer_instance_keeps_its_state_and_names_build_anew():
    opt = Adam(lr=0.1)
    assert TrainSpec(1, 1, opt).optimizer_instance() is opt
    spec = TrainSpec(1, 1, ("adam", {"lr": 0.1}))
    assert spec.optimizer_instance() is not spec.optimizer_instance()
    assert spec.record(spec.optimizer_instance(), 3)["optimizer"]["name"] == "adam"


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"steps": -1}, ValueError, "steps must be a non-negative integer"),
        ({"steps": 1.5}, TypeError, "steps must be a non-negative integer"),
        ({"batch_size": 0}, ValueError, "batch_size must be a positive integer"),
        ({"optimizer": 0.1}, TypeError, "optimizer must be"),
        ({"optimizer": ("adagrad", {})}, ValueError, "unknown optimizer 'adagrad'"),
        ({"optimizer": ("adam", {"beta": 1})}, TypeError, r"unknown argument\(s\) \['beta'\]"),
        ({"clip": 0}, ValueError, "clip must be"),
        ({"clip_value": "1"}, TypeError, "clip_value must be a real number"),
        ({"seed": -2}, ValueError, "seed must be a non-negative integer"),
        ({"seed": [1, 2.5]}, TypeError, "seed must be"),
        ({"record_every": 0}, ValueError, "record_every must be a positive integer or None"),
        ({"diagnostics": ("x",)}, ValueError, r"unknown diagnostics \['x'\]; known: grad_norm"),
        ({"backend": "gpu"}, ValueError, "backend must be one of 'cpu', 'cuda'"),
        ({"schedule": ["cosin", {}]}, ValueError, "unknown schedule 'cosin'; known: cosine"),
        ({"schedule": ("cosine", {"T_max": -1})}, ValueError, "T_max must be a positive"),
        ({"schedule": ("cosine", {"Tmax": 5})}, TypeError, r"unknown argument\(s\) \['Tmax'\]"),
        ({"schedule": 3}, TypeError, "schedule must be a numrnn.schedules.Schedule"),
    ],
)
def test_bad_settings_name_the_argument(kwargs, error, match):
    settings = {"steps": 3, "batch_size": 2, "optimizer": ("sgd", {"lr": 0.1}), **kwargs}
    with pytest.raises(error, match=match):
        TrainSpec(**settings)


def test_clip_is_stored_as_given():
    spec = TrainSpec(1, 1, ("sgd", {"lr": 0.1}), clip=1)
    assert spec.clip == 1 and isinstance(spec.clip, int)  # attrs keep what the user wrote


def test_schedule_is_built_once_and_recorded_as_its_spec():
    assert "schedule" in TrainSpec.names()  # so a sweep's [train] may give it
    spec = TrainSpec(5, 2, ("sgd", {"lr": 0.1}), schedule=["cosine", {"T_max": 100}])  # TOML
    assert isinstance(spec.schedule, CosineAnnealing) and spec.schedule.T_max == 100
    opt = spec.optimizer_instance()
    assert spec.record(opt, 3)["schedule"] == ["cosine", {"T_max": 100, "min_factor": 0.0}]
    assert TrainSpec(5, 2, ("sgd", {"lr": 0.1})).record(opt, 3)["schedule"] is None
    sched = CosineAnnealing(T_max=4)
    assert TrainSpec(5, 2, ("sgd", {"lr": 0.1}), schedule=sched).schedule is sched
