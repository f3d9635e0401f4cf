"""numrnn.RNN / LSTM / GRU against PyTorch, the naive reference and finite differences.

Conventions: L = sum(d_output * output) + sum(d_state * final_state) (both h and c
terms for LSTM); relative error is max|a - b| / max|b| (``naive.rel_err``).
"""

import numpy as np
import pytest
from helpers import model_class
from naive import (
    CELL_SPECS,
    finite_difference_grads,
    naive_forward,
    naive_loss,
    random_params,
    random_state,
    rel_err,
)

import numrnn as nr

TOL = {"float64": 1e-9, "float32": 2e-4}
NP_DTYPE = {"float64": np.float64, "float32": np.float32}

# Sizes for the torch comparisons; LENGTHS is unsorted and contains both T and 1.
T, B, D, H = 6, 3, 4, 5
LENGTHS = np.array([3, 6, 1])
SHORT_LENGTHS = np.array([2, 1, 4])  # all shorter than T


# --------------------------------------------------------------------------- helpers


def build_model(
    cell,
    params,
    input_size,
    hidden_size,
    *,
    num_layers=1,
    bidirectional=False,
    nonlinearity="tanh",
    reset_after=True,
    dtype="float64",
):
    """A numrnn model whose parameters are (a copy of) ``params``."""
    kwargs = dict(num_layers=num_layers, bidirectional=bidirectional, dtype=dtype, seed=0)
    if cell == "rnn":
        kwargs["nonlinearity"] = nonlinearity
    if cell == "gru":
        kwargs["reset_after"] = reset_after
    model = model_class(cell)(input_size, hidden_size, **kwargs)
    assert set(model.params) == set(params)
    for name, value in params.items():
        model.params[name][...] = value
    return model


def cast(a, dtype):
    """Cast an array, a tuple of arrays or None to ``dtype``."""
    if a is None:
        return None
    if isinstance(a, tuple):
        return tuple(np.asarray(v, dtype=dtype) for v in a)
    return np.asarray(a, dtype=dtype)


def as_pair(state, cell):
    """(h, c) for LSTM, (h,) otherwise, checking the LSTM's tuple layout."""
    if cell == "lstm":
        assert isinstance(state, tuple) and len(state) == 2, type(state)
        return tuple(state)
    assert isinstance(state, np.ndarray), type(state)
    return (state,)


def check_array(mine, reference, *, shape, dtype, tol, what):
    assert isinstance(mine, np.ndarray), f"{what}: {type(mine)}"
    assert mine.shape == shape, f"{what}: shape {mine.shape} != {shape}"
    assert mine.dtype == np.dtype(dtype), f"{what}: dtype {mine.dtype} != {dtype}"
    err = rel_err(mine, reference)
    assert err < tol, f"{what}: relative error {err:.3g} >= {tol}"


def random_problem(
    rng, cell, num_layers, bidirectional, *, t, b, d, h, dtype, with_state, with_d_state
):
    """Random params and data, already rounded to ``dtype`` (stored as float64)."""
    dirs = 2 if bidirectional else 1
    npd = NP_DTYPE[dtype]

    def rounded(a):
        return None if a is None else cast(cast(a, npd), np.float64)

    params = {
        k: rounded(v) for k, v in random_params(rng, cell, d, h, num_layers, bidirectional).items()
    }
    x = rounded(rng.normal(size=(t, b, d)))
    state = rounded(random_state(rng, cell, num_layers, dirs, b, h)) if with_state else None
    d_output = rounded(rng.normal(size=(t, b, dirs * h)))
    d_state = (
        rounded(random_state(rng, cell, num_layers, dirs, b, h, scale=1.0))
        if with_d_state
        else None
    )
    return params, x, state, d_output, d_state


def run_numrnn(model, x, state, lengths, d_output, d_state, dtype):
    npd = NP_DTYPE[dtype]
    res = model.forward(cast(x, npd), state=cast(state, npd), lengths=lengths)
    g = model.backward(res, cast(d_output, npd), d_state=cast(d_state, npd))
    return res, g


def check_against_torch(
    torch_reference,
    rng,
    spec,
    num_layers,
    bidirectional,
    lengths,
    *,
    dtype,
    with_state,
    with_d_state,
    sizes=(T, B, D, H),
):
    cell, nonlinearity = CELL_SPECS[spec]
    T, B, D, H = sizes
    dirs = 2 if bidirectional else 1
    tol = TOL[dtype]
    params, x, state, d_output, d_state = random_problem(
        rng,
        cell,
        num_layers,
        bidirectional,
        t=T,
        b=B,
        d=D,
        h=H,
        dtype=dtype,
        with_state=with_state,
        with_d_state=with_d_state,
    )
    kw = dict(num_layers=num_layers, bidirectional=bidirectional, nonlinearity=nonlinearity)
    # The reference runs in float64 on the same (rounded) numbers, so for float32 the
    # error measured is numrnn's own.
    ref = torch_reference(cell, params, x, state, lengths, d_output, d_state, **kw)
    model = build_model(cell, params, D, H, dtype=dtype, **kw)
    res, g = run_numrnn(model, x, state, lengths, d_output, d_state, dtype)

    check_array(
        res.output, ref["output"], shape=(T, B, dirs * H), dtype=dtype, tol=tol, what="output"
    )
    if lengths is not None:
        for b, L in enumerate(lengths):
            assert np.all(res.output[L:, b] == 0), "output past the sequence end"
    state_shape = (num_layers * dirs, B, H)
    for k, (mine, theirs) in enumerate(
        zip(as_pair(res.state, cell), as_pair(ref["state"], cell), strict=True)
    ):
        check_array(mine, theirs, shape=state_shape, dtype=dtype, tol=tol, what=f"final state[{k}]")

    assert set(g.params) == set(params)
    for name, value in params.items():
        check_array(
            g.params[name],
            ref["grads"][name],
            shape=value.shape,
            dtype=dtype,
            tol=tol,
            what=f"d {name}",
        )
    check_array(g.input, ref["d_input"], shape=x.shape, dtype=dtype, tol=tol, what="d input")
    if state is not None or g.state is not None:
        # With state=None, numrnn may return None or the gradient w.r.t. the zero state.
        for k, (mine, theirs) in enumerate(
            zip(as_pair(g.state, cell), as_pair(ref["d_state0"], cell), strict=True)
        ):
            check_array(
                mine, theirs, shape=state_shape, dtype=dtype, tol=tol, what=f"d initial state[{k}]"
            )


STATE_MODES = {  # name -> (with_state, with_d_state)
    "zero_state": (False, False),
    "state": (True, False),
    "d_state": (False, True),
    "state_and_d_state": (True, True),
}


# --------------------------------------------------------------------------- torch


@pytest.mark.parametrize("state_mode", list(STATE_MODES))
@pytest.mark.parametrize("use_lengths", [False, True], ids=["full", "lengths"])
@pytest.mark.parametrize("bidirectional", [False, True], ids=["uni", "bi"])
@pytest.mark.parametrize("num_layers", [1, 2, 3])
@pytest.mark.parametrize("spec", list(CELL_SPECS))
def test_float64_matches_torch(
    torch_reference, rng, spec, num_layers, bidirectional, use_lengths, state_mode
):
    with_state, with_d_state = STATE_MODES[state_mode]
    check_against_torch(
        torch_reference,
        rng,
        spec,
        num_layers,
        bidirectional,
        LENGTHS if use_lengths else None,
        dtype="float64",
        with_state=with_state,
        with_d_state=with_d_state,
    )


@pytest.mark.parametrize(
    ("num_layers", "bidirectional", "use_lengths", "state_mode"),
    [
        (1, False, False, "zero_state"),
        (2, True, True, "state_and_d_state"),
        (3, False, True, "state"),
        (1, True, False, "d_state"),
    ],
)
@pytest.mark.parametrize("spec", list(CELL_SPECS))
def test_float32_matches_torch(
    torch_reference, rng, spec, num_layers, bidirectional, use_lengths, state_mode
):
    with_state, with_d_state = STATE_MODES[state_mode]
    check_against_torch(
        torch_reference,
        rng,
        spec,
        num_layers,
        bidirectional,
        LENGTHS if use_lengths else None,
        dtype="float32",
        with_state=with_state,
        with_d_state=with_d_state,
    )


@pytest.mark.parametrize("spec", list(CELL_SPECS))
def test_lengths_all_shorter_than_T_match_torch(torch_reference, rng, spec):
    check_against_torch(
        torch_reference,
        rng,
        spec,
        2,
        True,
        SHORT_LENGTHS,
        dtype="float64",
        with_state=True,
        with_d_state=True,
    )


@pytest.mark.parametrize(
    ("sizes", "lengths"),
    [
        ((1, 1, 1, 1), None),
        ((1, 2, 3, 2), np.array([1, 1])),
        ((4, 3, 2, 3), np.array([1, 1, 1])),
        ((7, 1, 4, 5), np.array([7])),
        # a step's product as linalg.add_dot_loops: four rows in one tile, three vectors
        ((5, 4, 3, 24), np.array([5, 3, 4, 2])),
        # a tile of four rows and a row left over, four vectors at a time and one more
        ((3, 5, 2, 40), np.array([3, 2, 3, 1, 3])),
        # a larger step's product: as the loops for the RNN and GRU (25 vectors a row, with
        # the batch split between two threads), BLAS for the LSTM's 800 columns
        ((2, 4, 3, 200), np.array([2, 1, 2, 2])),
        # a large W_hh: each step one BLAS call or the panels, fewer rows where fewer
        # sequences are active
        ((3, 8, 2, 512), np.array([3, 1, 2, 3, 3, 2, 1, 3])),
        # the LSTM's W_hh^T and W_ih^T (64 x 256) rows 2 KB apart: padded for the loops
        # (linalg.loop_weights)
        ((4, 16, 5, 64), np.array([4, 4, 2, 3, 4, 1, 4, 2, 3, 4, 4, 1, 2, 4, 3, 4])),
    ],
    ids=[
        "T1B1D1H1",
        "T1-lengths",
        "all-lengths-1",
        "B1-long",
        "H24",
        "H40-B5",
        "H200",
        "H512",
        "H64-B16",
    ],  # fmt: skip
)
@pytest.mark.parametrize("spec", list(CELL_SPECS))
@pytest.mark.parametrize("products", ["blas", "panels"])
def test_edge_sizes_match_torch(torch_reference, rng, spec, sizes, lengths, products):
    # every path of the products on any machine: BLAS calls (and the loops below their
    # size) and numrnn's panels (and the loops below theirs); the ids above name the BLAS
    # paths, under the panels everything from 2^13 multiply-adds is the panels
    with nr.set_options(products=products):
        check_against_torch(
            torch_reference,
            rng,
            spec,
            2,
            True,
            lengths,
            dtype="float64",
            with_state=True,
            with_d_state=True,
            sizes=sizes,
        )


# --------------------------------------------------------------------------- naive + FD

t_, b_, d_, h_ = 4, 2, 3, 3  # tiny sizes for finite differences
FD_LENGTHS = np.array([2, 4])


def check_against_naive_fd(
    rng,
    cell,
    *,
    nonlinearity="tanh",
    reset_after=True,
    num_layers=1,
    bidirectional=False,
    lengths=None,
    with_state=True,
    with_d_state=True,
):
    dirs = 2 if bidirectional else 1
    params, x, state, d_output, d_state = random_problem(
        rng,
        cell,
        num_layers,
        bidirectional,
        t=t_,
        b=b_,
        d=d_,
        h=h_,
        dtype="float64",
        with_state=with_state,
        with_d_state=with_d_state,
    )
    kw = dict(
        num_layers=num_layers,
        bidirectional=bidirectional,
        nonlinearity=nonlinearity,
        reset_after=reset_after,
    )
    model = build_model(cell, params, d_, h_, **kw)
    res, g = run_numrnn(model, x, state, lengths, d_output, d_state, "float64")

    out_ref, state_ref = naive_forward(cell, params, x, state, lengths, **kw)
    check_array(
        res.output, out_ref, shape=(t_, b_, dirs * h_), dtype="float64", tol=1e-10, what="output"
    )
    for k, (mine, theirs) in enumerate(
        zip(as_pair(res.state, cell), as_pair(state_ref, cell), strict=True)
    ):
        check_array(
            mine,
            theirs,
            shape=(num_layers * dirs, b_, h_),
            dtype="float64",
            tol=1e-10,
            what=f"final state[{k}]",
        )

    # Finite differences w.r.t. every parameter, the input and the initial state.
    zero = np.zeros((num_layers * dirs, b_, h_))
    point = dict(params, __x=x)
    if cell == "lstm":
        point["__h0"], point["__c0"] = state if state is not None else (zero, zero)
    else:
        point["__h0"] = state if state is not None else zero

    def loss(a):
        p = {n: a[n] for n in params}
        s = (a["__h0"], a["__c0"]) if cell == "lstm" else a["__h0"]
        return naive_loss(cell, p, a["__x"], s, lengths, d_output, d_state, **kw)

    fd = finite_difference_grads(loss, point, eps=1e-6)
    for name in params:
        check_array(
            g.params[name],
            fd[name],
            shape=params[name].shape,
            dtype="float64",
            tol=1e-6,
            what=f"d {name}",
        )
    check_array(g.input, fd["__x"], shape=x.shape, dtype="float64", tol=1e-6, what="d input")
    if state is not None or g.state is not None:
        fd_state = (fd["__h0"], fd["__c0"]) if cell == "lstm" else (fd["__h0"],)
        for k, (mine, theirs) in enumerate(zip(as_pair(g.state, cell), fd_state, strict=True)):
            check_array(
                mine,
                theirs,
                shape=zero.shape,
                dtype="float64",
                tol=1e-6,
                what=f"d initial state[{k}]",
            )


@pytest.mark.parametrize(
    ("num_layers", "bidirectional", "use_lengths", "state_mode"),
    [
        (1, False, False, "zero_state"),
        (1, True, True, "state"),
        (2, False, False, "d_state"),
        (2, True, True, "state_and_d_state"),
    ],
)
def test_gru_reset_before_against_naive_and_finite_differences(
    rng, num_layers, bidirectional, use_lengths, state_mode
):
    with_state, with_d_state = STATE_MODES[state_mode]
    check_against_naive_fd(
        rng,
        "gru",
        reset_after=False,
        num_layers=num_layers,
        bidirectional=bidirectional,
        lengths=FD_LENGTHS if use_lengths else None,
        with_state=with_state,
        with_d_state=with_d_state,
    )


@pytest.mark.parametrize("spec", list(CELL_SPECS))
def test_against_naive_and_finite_differences(rng, spec):
    cell, nonlinearity = CELL_SPECS[spec]
    check_against_naive_fd(
        rng, cell, nonlinearity=nonlinearity, num_layers=2, bidirectional=True, lengths=FD_LENGTHS
    )


def test_gru_reset_before_differs_from_reset_after(rng):
    params = random_params(rng, "gru", d_, h_)
    x = rng.normal(size=(t_, b_, d_))
    after = build_model("gru", params, d_, h_).forward(x).output
    before = build_model("gru", params, d_, h_, reset_after=False).forward(x).output
    assert rel_err(before, after) > 1e-3


# --------------------------------------------------------------------------- API contracts


def test_default_dtype_is_float64():
    model = nr.LSTM(D, H, seed=0)
    assert all(p.dtype == np.float64 for p in model.params.values())
    res = model.forward(np.zeros((T, B, D)))
    assert res.output.dtype == np.float64


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_seed_makes_params_reproducible(cell):
    a = model_class(cell)(D, H, num_layers=2, bidirectional=True, seed=123)
    b = model_class(cell)(D, H, num_layers=2, bidirectional=True, seed=123)
    c = model_class(cell)(D, H, num_layers=2, bidirectional=True, seed=124)
    for name in a.params:
        np.testing.assert_array_equal(a.params[name], b.params[name])
    assert any(not np.array_equal(a.params[n], c.params[n]) for n in a.params)


def _small_problem(rng, cell, dtype="float64", num_layers=2, bidirectional=True):
    params, x, state, d_output, d_state = random_problem(
        rng,
        cell,
        num_layers,
        bidirectional,
        t=T,
        b=B,
        d=D,
        h=H,
        dtype=dtype,
        with_state=True,
        with_d_state=True,
    )
    model = build_model(
        cell, params, D, H, num_layers=num_layers, bidirectional=bidirectional, dtype=dtype
    )
    npd = NP_DTYPE[dtype]
    return model, cast(x, npd), cast(state, npd), cast(d_output, npd), cast(d_state, npd)


def _flat(a):
    return list(a) if isinstance(a, tuple) else [a]


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_d_state_none_equals_zero_d_state(rng, cell):
    model, x, state, d_output, d_state = _small_problem(rng, cell)
    res = model.forward(x, state=state, lengths=LENGTHS)
    g_none = model.backward(res, d_output)
    zeros = tuple(np.zeros_like(s) for s in d_state) if cell == "lstm" else np.zeros_like(d_state)
    g_zero = model.backward(res, d_output, d_state=zeros)
    for name in g_none.params:
        np.testing.assert_array_equal(g_none.params[name], g_zero.params[name])
    np.testing.assert_array_equal(g_none.input, g_zero.input)


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_backward_without_input_grad_gives_the_same_parameter_gradients(rng, cell):
    model, x, state, d_output, d_state = _small_problem(rng, cell)
    res = model.forward(x, state=state, lengths=LENGTHS)
    full = model.backward(res, d_output, d_state=d_state)
    lean = model.backward(res, d_output, d_state=d_state, input_grad=False)
    assert lean.input is None and full.input is not None
    for name in full.params:
        np.testing.assert_array_equal(lean.params[name], full.params[name])
    for a, b in zip(_flat(full.state), _flat(lean.state), strict=True):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_inputs_are_not_modified_and_backward_is_repeatable(rng, cell):
    model, x, state, d_output, d_state = _small_problem(rng, cell)
    copies = [a.copy() for a in [x, d_output, *_flat(state), *_flat(d_state)]]
    params_before = {k: v.copy() for k, v in model.params.items()}
    lengths = LENGTHS.copy()
    res = model.forward(x, state=state, lengths=lengths)
    out_before = res.output.copy()
    g1 = model.backward(res, d_output, d_state=d_state)
    g1 = ({k: v.copy() for k, v in g1.params.items()}, g1.input.copy())
    g2 = model.backward(res, d_output, d_state=d_state)
    for before, after in zip(copies, [x, d_output, *_flat(state), *_flat(d_state)], strict=True):
        np.testing.assert_array_equal(before, after)
    np.testing.assert_array_equal(lengths, LENGTHS)
    for name in params_before:
        np.testing.assert_array_equal(params_before[name], model.params[name])
    np.testing.assert_array_equal(res.output, out_before)
    for name in g1[0]:
        np.testing.assert_array_equal(g1[0][name], g2.params[name])
    np.testing.assert_array_equal(g1[1], g2.input)


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_non_contiguous_readonly_inputs_and_int32_lengths(rng, cell):
    model, x, state, d_output, d_state = _small_problem(rng, cell)
    res = model.forward(x, state=state, lengths=LENGTHS)
    g = model.backward(res, d_output, d_state=d_state)

    def strided(a):  # same values, non-contiguous memory
        if isinstance(a, tuple):
            return tuple(strided(v) for v in a)
        big = np.zeros(a.shape[:-1] + (2 * a.shape[-1],), dtype=a.dtype)
        big[..., ::2] = a
        return big[..., ::2]

    def readonly(a):
        if isinstance(a, tuple):
            return tuple(readonly(v) for v in a)
        a = a.copy()
        a.setflags(write=False)
        return a

    res3 = model.forward(readonly(x), state=readonly(state), lengths=readonly(LENGTHS))
    g3 = model.backward(res3, readonly(d_output), d_state=readonly(d_state))
    np.testing.assert_array_equal(res3.output, res.output)
    np.testing.assert_array_equal(g3.input, g.input)

    assert not strided(x).flags.c_contiguous
    res2 = model.forward(strided(x), state=strided(state), lengths=LENGTHS.astype(np.int32))
    g2 = model.backward(res2, strided(d_output), d_state=strided(d_state))
    np.testing.assert_allclose(res2.output, res.output, rtol=1e-13, atol=1e-15)
    for name in g.params:
        np.testing.assert_allclose(g2.params[name], g.params[name], rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(g2.input, g.input, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_full_lengths_equal_no_lengths(rng, cell):
    model, x, state, d_output, d_state = _small_problem(rng, cell)
    res_a = model.forward(x, state=state)
    res_b = model.forward(x, state=state, lengths=np.full(B, T))
    np.testing.assert_allclose(res_b.output, res_a.output, rtol=1e-13, atol=1e-15)
    for a, b in zip(_flat(res_a.state), _flat(res_b.state), strict=True):
        np.testing.assert_allclose(b, a, rtol=1e-13, atol=1e-15)
    g_a = model.backward(res_a, d_output, d_state=d_state)
    g_b = model.backward(res_b, d_output, d_state=d_state)
    for name in g_a.params:
        np.testing.assert_allclose(g_b.params[name], g_a.params[name], rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_lengths_equal_running_each_sequence_alone(rng, cell):
    """Sequence b of a padded batch behaves as if it were run alone, truncated."""
    model, x, state, d_output, d_state = _small_problem(rng, cell)
    res = model.forward(x, state=state, lengths=LENGTHS)
    for b, L in enumerate(LENGTHS):
        s_b = tuple(s[:, b : b + 1] for s in state) if cell == "lstm" else state[:, b : b + 1]
        alone = model.forward(x[:L, b : b + 1], state=s_b)
        np.testing.assert_allclose(res.output[:L, b : b + 1], alone.output, rtol=1e-12, atol=1e-14)
        for full, single in zip(_flat(res.state), _flat(alone.state), strict=True):
            np.testing.assert_allclose(full[:, b : b + 1], single, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
@pytest.mark.parametrize("readout", [None, "all", "last"])
def test_predict_is_forward_in_eval_mode_chunk_by_chunk(cell, readout):
    """predict = forward(train=False).output, whatever the chunking, for single models and
    ensembles (shared or per-member inputs), with lengths; bad chunks are named."""
    cls = {"rnn": nr.RNN, "lstm": nr.LSTM, "gru": nr.GRU}[cell]
    head = {} if readout is None else {"output_size": 2, "readout": readout}
    make = lambda s: cls(3, 4, num_layers=2, bidirectional=True, dropout=0.3, seed=s, **head)  # noqa: E731
    rng = np.random.default_rng(0)
    x, lengths = rng.standard_normal((6, 7, 3)), rng.integers(1, 7, 7)
    for model in (make(0), nr.ensemble([make(1), make(2)])):
        want = model.forward(x, lengths=lengths).output
        for chunk in (1, 3, 7, 100):
            got = model.predict(x, lengths, chunk=chunk)
            assert got.shape == want.shape
            np.testing.assert_allclose(got, want, rtol=1e-13, atol=1e-15)
    ens = nr.ensemble([make(1), make(2)])
    xk = rng.standard_normal((2, 6, 7, 3))
    np.testing.assert_allclose(ens.predict(xk, chunk=2), ens.forward(xk).output, rtol=1e-13,
                               atol=1e-15)  # fmt: skip
    with pytest.raises(ValueError, match="chunk must be"):
        make(0).predict(x, chunk=0)
    with pytest.raises(ValueError, match="lengths"):
        make(0).predict(x, lengths=[3, 4])
    with pytest.raises(ValueError, match="x must have shape"):
        make(0).predict(x[..., :2])
