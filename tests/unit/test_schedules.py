"""Learning-rate schedules against torch.optim.lr_scheduler driving a torch optimizer."""

import json

import numpy as np
import pytest

from numrnn import schedules

N = 40  # updates compared


def torch_rates(make, base, n=N):
    """The rate a torch SGD optimizer uses at each of its first ``n`` updates, its
    scheduler ``make(optimizer)`` stepped once after every update."""
    torch = pytest.importorskip("torch")
    p = torch.zeros(2, requires_grad=True)
    opt = torch.optim.SGD([p], lr=base)
    sched = make(torch.optim.lr_scheduler, opt)
    rates = []
    for _ in range(n):
        rates.append(opt.param_groups[0]["lr"])
        p.grad = torch.ones(2)
        opt.step()
        sched.step()
    return np.array(rates)


# (numrnn spec, torch scheduler from (lr_scheduler, optimizer), base rate)
CASES = {
    "step": (
        ("step", {"step_size": 7, "gamma": 0.3}),
        lambda m, o: m.StepLR(o, step_size=7, gamma=0.3),
        0.1,
    ),
    "step default gamma": (("step", {"step_size": 4}), lambda m, o: m.StepLR(o, 4), 1.0),
    "exponential": (
        ("exponential", {"gamma": 0.93}),
        lambda m, o: m.ExponentialLR(o, gamma=0.93),
        0.05,
    ),
    "cosine": (("cosine", {"T_max": 15}), lambda m, o: m.CosineAnnealingLR(o, T_max=15), 1.0),
    # torch's eta_min is absolute: min_factor * base; past T_max the cosine rises again
    "cosine min_factor": (
        ("cosine", {"T_max": 12, "min_factor": 0.1}),
        lambda m, o: m.CosineAnnealingLR(o, T_max=12, eta_min=0.1 * 0.3),
        0.3,
    ),
    "warmup": (
        ("warmup", {"start_factor": 0.1, "total_iters": 9}),
        lambda m, o: m.LinearLR(o, start_factor=0.1, total_iters=9),
        0.02,
    ),
    "warmup defaults": (("warmup", {}), lambda m, o: m.LinearLR(o), 1.0),
    "linear decay": (
        ("warmup", {"start_factor": 1.0, "end_factor": 0.2, "total_iters": 25}),
        lambda m, o: m.LinearLR(o, start_factor=1.0, end_factor=0.2, total_iters=25),
        0.5,
    ),
    "warmup then cosine": (
        ("sequential", {"schedules": [("warmup", {"start_factor": 0.2, "total_iters": 5}),
                                      ("cosine", {"T_max": 30, "min_factor": 0.05})],
                        "milestones": [6]}),
        lambda m, o: m.SequentialLR(
            o, [m.LinearLR(o, start_factor=0.2, total_iters=5),
                m.CosineAnnealingLR(o, T_max=30, eta_min=0.05 * 0.01)], milestones=[6]),
        0.01,
    ),
    "three in sequence": (
        ["sequential", {"schedules": [["warmup", {"start_factor": 0.5, "total_iters": 3}],
                                      ["step", {"step_size": 4, "gamma": 0.5}],
                                      ["exponential", {"gamma": 0.9}]],
                        "milestones": [3, 20]}],
        lambda m, o: m.SequentialLR(
            o, [m.LinearLR(o, start_factor=0.5, total_iters=3), m.StepLR(o, 4, gamma=0.5),
                m.ExponentialLR(o, gamma=0.9)], milestones=[3, 20]),
        0.2,
    ),
}  # fmt: skip


@pytest.mark.parametrize("case", list(CASES))
def test_rates_match_torch(case):
    spec, make, base = CASES[case]
    want = torch_rates(make, base)
    sched = schedules.get(spec)
    got = np.array([base * sched(s) for s in range(N)])
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-14)
    assert all(0 <= sched(s) <= 1 for s in range(N))  # (cosine reaches 0 at T_max)


def test_factors_by_hand():
    step = schedules.get(("step", {"step_size": 2, "gamma": 0.5}))
    assert [step(s) for s in range(6)] == [1.0, 1.0, 0.5, 0.5, 0.25, 0.25]
    cosine = schedules.get(("cosine", {"T_max": 10, "min_factor": 0.25}))
    assert cosine(0) == 1.0 and cosine(10) == 0.25 and cosine(20) == 1.0
    assert cosine(5) == pytest.approx(0.625, rel=1e-15)
    assert schedules.get(("cosine", {"T_max": 3}))(3) == 0.0  # a rate of 0 at T_max
    warm = schedules.get(("warmup", {"start_factor": 0.5, "total_iters": 2}))
    assert [warm(s) for s in range(4)] == [0.5, 0.75, 1.0, 1.0]
    then = schedules.Sequential([warm, step], milestones=[3])
    assert [then(s) for s in range(8)] == [0.5, 0.75, 1.0, 1.0, 1.0, 0.5, 0.5, 0.25]
    assert isinstance(then(np.int64(4)), float)


def test_get_forms_and_spec_round_trip():
    sched = schedules.CosineAnnealing(T_max=8)
    assert schedules.get(sched) is sched
    assert isinstance(schedules.get("warmup"), schedules.LinearWarmup)  # torch's defaults
    assert repr(schedules.get(["step", {"step_size": 3}])) == "StepDecay(step_size=3, gamma=0.1)"
    for case in CASES.values():
        sched = schedules.get(case[0])
        spec = json.loads(json.dumps(sched.spec()))  # as a run's attrs keep it
        again = schedules.get(spec)
        assert type(again) is type(sched) and repr(again) == repr(sched)
        assert [again(s) for s in range(N)] == [sched(s) for s in range(N)]
    want = ["cosine", {"T_max": 5, "min_factor": 0.0}]
    assert schedules.get(("cosine", {"T_max": 5})).spec() == want
    nested = schedules.get(CASES["warmup then cosine"][0]).spec()
    assert nested[0] == "sequential" and nested[1]["milestones"] == [6]
    assert nested[1]["schedules"][1] == ["cosine", {"T_max": 30, "min_factor": 0.05}]


@pytest.mark.parametrize(
    "spec, error, match",
    [
        (("cosin", {}), ValueError, "unknown schedule 'cosin'; known: cosine, exponential, "
                                    "sequential, step, warmup"),
        ("cosine", TypeError, r"schedule 'cosine' takes \(T_max, min_factor\): missing"),
        (("step", {"step_size": 2, "gama": 0.5}), TypeError,
         r"unknown argument\(s\) \['gama'\]; accepted: step_size, gamma"),
        (0.1, TypeError, r"schedule must be a numrnn.schedules.Schedule, a name or a \(name, "
                         "kwargs\\) pair"),
        (("cosine", {"T_max": 5}, {}), TypeError, "schedule must be"),
        (("step", {"step_size": 0}), ValueError, "step_size must be a positive integer, got 0"),
        (("step", {"step_size": 2.0}), TypeError, "step_size must be a positive integer"),
        (("step", {"step_size": 2, "gamma": 0.0}), ValueError, r"gamma must be finite and in "
                                                              r"\(0.0, 1.0\], got 0.0"),
        (("step", {"step_size": 2, "gamma": 1.5}), ValueError, "gamma must be"),
        (("exponential", {"gamma": float("nan")}), ValueError, "gamma must be finite"),
        (("exponential", {"gamma": "0.9"}), TypeError, "gamma must be a real number"),
        (("cosine", {"T_max": 0}), ValueError, "T_max must be a positive integer"),
        (("cosine", {"T_max": 5, "min_factor": -0.1}), ValueError,
         r"min_factor must be finite and in \[0.0, 1.0\]"),
        (("cosine", {"T_max": 5, "min_factor": 2}), ValueError, "min_factor must be"),
        (("warmup", {"start_factor": 0}), ValueError, r"start_factor must be finite and in "
                                                      r"\(0.0, 1.0\]"),
        (("warmup", {"end_factor": 1.1}), ValueError, "end_factor must be"),
        (("warmup", {"total_iters": 0}), ValueError, "total_iters must be a positive integer"),
        (("sequential", {"schedules": []}), ValueError, "schedules must be a non-empty list"),
        (("sequential", {"schedules": "step"}), ValueError, "schedules must be a non-empty "
                                                            "list"),
        (("sequential", {"schedules": [("cosine", {"T_max": 0})]}), ValueError, "T_max"),
        (("sequential", {"schedules": ["warmup", "warmup"], "milestones": 3}), TypeError,
         "milestones must be a list of steps"),
        (("sequential", {"schedules": ["warmup", "warmup"]}), ValueError,
         r"milestones must have one step fewer than schedules \(1\), got 0"),
        (("sequential", {"schedules": ["warmup"] * 3, "milestones": [4, 4]}), ValueError,
         r"milestones must increase, got \[4, 4\]"),
        (("sequential", {"schedules": ["warmup"] * 2, "milestones": [0]}), ValueError,
         "milestones must be a positive integer, got 0"),
    ],
)  # fmt: skip
def test_bad_arguments_name_the_argument(spec, error, match):
    with pytest.raises(error, match=match):
        schedules.get(spec)


def test_bad_step():
    sched = schedules.get(("exponential", {"gamma": 0.5}))
    with pytest.raises(ValueError, match="step must be a non-negative integer, got -1"):
        sched(-1)
    with pytest.raises(TypeError, match="step must be a non-negative integer"):
        sched(1.0)
