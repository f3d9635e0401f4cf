"""numrnn._registry: one look-up and one error format for every registry."""

import pytest

from numrnn import init, losses, optim, tasks
from numrnn._registry import Registry
from numrnn.nn.cells import CELLS


def test_lookup_and_create():
    reg = Registry("widget", {"pair": lambda a, b=2: (a, b)})
    assert reg.lookup("pair") is reg["pair"]
    assert reg.create("pair", a=1) == (1, 2)
    assert reg.create("pair", a=1, b=3) == (1, 3)


def test_unknown_name_lists_the_known_ones_sorted():
    reg = Registry("widget", {"b": int, "a": int})
    for bad in ("c", None, 3):
        with pytest.raises(ValueError, match=r"unknown widget .*; known: a, b$"):
            reg.lookup(bad)


def test_arguments_are_checked_against_the_signature():
    reg = Registry("widget", {"pair": lambda a, b=2: (a, b), "none": lambda: 0})
    with pytest.raises(TypeError, match=r"widget 'pair' got unknown argument\(s\) \['c'\]; "
                                        r"accepted: a, b"):  # fmt: skip
        reg.create("pair", a=1, c=3)
    with pytest.raises(TypeError, match=r"widget 'pair' takes \(a, b\): missing .*'a'"):
        reg.create("pair")
    with pytest.raises(TypeError, match="accepted: no arguments"):
        reg.create("none", x=1)


@pytest.mark.parametrize(
    "registry, what",
    [(init.INITIALIZERS, "initializer"), (optim.OPTIMIZERS, "optimizer"),
     (tasks.TASKS, "task"), (losses.LOSSES, "loss"), (CELLS, "cell")],
)  # fmt: skip
def test_every_registry_is_a_registry(registry, what):
    assert isinstance(registry, Registry) and registry.what == what
    with pytest.raises(ValueError, match=f"unknown {what} 'nope'; known: "):
        registry.lookup("nope")
