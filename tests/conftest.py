"""Shared fixtures and helpers for the numrnn test-suite.

torch is optional: only the ``torch`` / ``torch_reference`` fixtures need it,
and they skip the test cleanly when it is missing.
"""

import os
import sys

import numpy as np
import pytest

sys.path.insert(0, os.path.dirname(__file__))  # make `import naive` work in any import mode
pytest.register_assert_rewrite("helpers")  # its asserts report like a test module's


@pytest.fixture
def rng():
    """A freshly seeded generator per test: tests never depend on each other's draws."""
    return np.random.default_rng(20240611)


@pytest.fixture
def torch():
    """The torch module, or skip the test when it is not installed."""
    return pytest.importorskip("torch")


def make_torch_module(
    cell,
    params,
    input_size,
    hidden_size,
    *,
    num_layers=1,
    bidirectional=False,
    nonlinearity="tanh",
    dtype="float64",
):
    """torch.nn.RNN/LSTM/GRU (time-major) holding a copy of ``params``."""
    import torch

    tdtype = {"float64": torch.float64, "float32": torch.float32}[dtype]
    kwargs = dict(num_layers=num_layers, bidirectional=bidirectional, dtype=tdtype)
    if cell == "rnn":
        module = torch.nn.RNN(input_size, hidden_size, nonlinearity=nonlinearity, **kwargs)
    elif cell == "lstm":
        module = torch.nn.LSTM(input_size, hidden_size, **kwargs)
    elif cell == "gru":
        module = torch.nn.GRU(input_size, hidden_size, **kwargs)
    else:
        raise ValueError(cell)
    own = dict(module.named_parameters())
    assert set(own) == set(params), (sorted(own), sorted(params))
    with torch.no_grad():
        for name, value in params.items():
            assert tuple(own[name].shape) == value.shape, name
            own[name].copy_(torch.from_numpy(np.asarray(value)))
    return module


def torch_forward_backward(
    cell,
    params,
    x,
    state=None,
    lengths=None,
    d_output=None,
    d_state=None,
    *,
    num_layers=1,
    bidirectional=False,
    nonlinearity="tanh",
    dtype="float64",
):
    """Run torch forward (through packing when ``lengths`` is given) and autograd.

    Returns a dict with numpy arrays: ``output``, ``state`` (tuple for LSTM) and,
    when ``d_output`` is given, ``grads`` (params), ``d_input`` and ``d_state0``
    (gradient w.r.t. the initial state, zeros when ``state`` is None; tuple for
    LSTM) of L = sum(d_output * output) + sum(d_state * final_state).
    """
    import torch
    from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

    T, B, D = x.shape
    H = params["weight_hh_l0"].shape[1]
    dirs = 2 if bidirectional else 1
    module = make_torch_module(
        cell,
        params,
        D,
        H,
        num_layers=num_layers,
        bidirectional=bidirectional,
        nonlinearity=nonlinearity,
        dtype=dtype,
    )
    tdtype = next(module.parameters()).dtype

    def leaf(a):
        return torch.tensor(np.asarray(a), dtype=tdtype, requires_grad=True)

    xt = leaf(x)
    zeros = np.zeros((num_layers * dirs, B, H))
    if cell == "lstm":
        h0, c0 = (zeros, zeros) if state is None else state
        hx = (leaf(h0), leaf(c0))
    else:
        hx = leaf(zeros if state is None else state)

    if lengths is None:
        out, hn = module(xt, hx)
    else:
        lengths_t = torch.as_tensor(np.asarray(lengths), dtype=torch.int64)
        packed = pack_padded_sequence(xt, lengths_t, enforce_sorted=False)
        out_packed, hn = module(packed, hx)
        out, _ = pad_packed_sequence(out_packed, total_length=T)

    result = {
        "output": out.detach().numpy(),
        "state": tuple(s.detach().numpy() for s in hn) if cell == "lstm" else hn.detach().numpy(),
    }
    if d_output is None:
        return result

    loss = (torch.as_tensor(np.asarray(d_output), dtype=tdtype) * out).sum()
    if d_state is not None:
        if cell == "lstm":
            for ds, s in zip(d_state, hn, strict=True):
                loss = loss + (torch.as_tensor(np.asarray(ds), dtype=tdtype) * s).sum()
        else:
            loss = loss + (torch.as_tensor(np.asarray(d_state), dtype=tdtype) * hn).sum()
    loss.backward()

    def grad(t):
        return np.zeros(tuple(t.shape)) if t.grad is None else t.grad.numpy()

    named = dict(module.named_parameters())
    result["grads"] = {name: grad(named[name]) for name in params}
    result["d_input"] = grad(xt)
    result["d_state0"] = tuple(grad(h) for h in hx) if cell == "lstm" else grad(hx)
    return result


@pytest.fixture
def torch_reference(torch):
    """:func:`torch_forward_backward`, skipping the test when torch is missing."""
    return torch_forward_backward


@pytest.fixture
def torch_module(torch):
    """:func:`make_torch_module`, skipping the test when torch is missing."""
    return make_torch_module
