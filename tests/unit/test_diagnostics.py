"""Independent checks of :mod:`numrnn.diagnostics`.

Nothing here compares numrnn with its own output. The references are

* PyTorch autograd through a network unrolled by hand in this file, one Python step per
  time step and per sequence, written straight from the cell equations (so variable
  lengths, directions and stacking are spelled out, not borrowed from numrnn);
* closed forms: a ReLU RNN kept in its linear regime (every pre-activation positive), whose
  Jacobian products are exactly powers of W_hh; orthogonal W_hh scaled by ``a`` (powers of
  norm a^k); diagonal W_hh (Lyapunov exponents log|d|);
* the determinant identity sum(Lyapunov exponents) = mean log|det J_t|, with J_t from
  autograd on a single step.
"""

import json

import numpy as np
import pytest

import numrnn as nr

D, H, T = 3, 4, 5
LENGTHS = np.array([5, 2, 4, 1])  # unsorted, one sequence of a single step
B = len(LENGTHS)
CELLS = ("rnn_tanh", "rnn_relu", "lstm", "gru_after", "gru_before")


def make_model(cell, num_layers=2, bidirectional=True, seed=0, input_size=D, hidden=H, **kw):
    if cell.startswith("rnn"):
        return nr.RNN(input_size, hidden, num_layers, bidirectional, seed=seed,
                      nonlinearity=cell[4:], **kw)  # fmt: skip
    if cell == "lstm":
        return nr.LSTM(input_size, hidden, num_layers, bidirectional, seed=seed, **kw)
    return nr.GRU(input_size, hidden, num_layers, bidirectional, seed=seed,
                  reset_after=cell == "gru_after", **kw)  # fmt: skip


def make_inputs(model, variant, seed=1):
    """x, state, lengths for a variant: "plain" (zero state, full lengths) or "ragged"."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((T, B, model.input_size))
    if variant == "plain":
        return x, None, None
    shape = (model.num_layers * model.num_directions, B, model.hidden_size)
    state = tuple(0.5 * rng.standard_normal(shape) for _ in range(model.n_states))
    return x, (state if model.cell_type == "lstm" else state[0]), LENGTHS


# -- a hand-unrolled reference in PyTorch ----------------------------------------------------


def torch_params(torch, model):
    # requires_grad so that the states are part of an autograd graph
    return {k: torch.tensor(np.asarray(v, np.float64), requires_grad=True)
            for k, v in model.params.items()}  # fmt: skip


def cell_name(model):
    if model.cell_type == "rnn":
        return f"rnn_{model.nonlinearity}"
    if model.cell_type == "gru":
        return "gru_after" if model.reset_after else "gru_before"
    return "lstm"


def torch_step(torch, cell, p, layer, d, x, s):
    """One step of one sequence: x (D_l,), state tuple (h,) or (h, c) -> new state tuple."""
    sfx = f"_l{layer}" + ("_reverse" if d else "")
    w_ih, w_hh, b_ih, b_hh = (p[k + sfx] for k in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"))
    h = s[0]
    if cell.startswith("rnn"):
        a = w_ih @ x + b_ih + w_hh @ h + b_hh
        return (torch.tanh(a) if cell == "rnn_tanh" else torch.relu(a),)
    if cell == "lstm":
        i, f, g, o = (w_ih @ x + b_ih + w_hh @ h + b_hh).chunk(4)
        c = torch.sigmoid(f) * s[1] + torch.sigmoid(i) * torch.tanh(g)
        return torch.sigmoid(o) * torch.tanh(c), c
    xr, xz, xn = (w_ih @ x + b_ih).chunk(3)
    wr, wz, wn = w_hh.chunk(3)
    br, bz, bn = b_hh.chunk(3)
    r = torch.sigmoid(xr + wr @ h + br)
    z = torch.sigmoid(xz + wz @ h + bz)
    if cell == "gru_after":
        n = torch.tanh(xn + r * (wn @ h + bn))
    else:
        n = torch.tanh(xn + wn @ (r * h) + bn)
    return ((1 - z) * n + z * h,)


def torch_forward(torch, model, x, state, lengths, p=None):
    """Unrolled forward of the whole network, sequence by sequence.

    Returns (output (T, B, dirs*H) of the recurrent layers, inputs, traj) where
    ``inputs[layer][b][t]`` is the layer's input vector at real time t and
    ``traj[layer, d, b]`` the list of state tuples after each step in the direction's order
    (the first entry of the list is the initial state).
    """
    p = torch_params(torch, model) if p is None else p
    cell = cell_name(model)
    Tn, Bn, _ = x.shape
    L, dirs, Hn = model.num_layers, model.num_directions, model.hidden_size
    lens = [Tn] * Bn if lengths is None else [int(n) for n in lengths]
    if state is None:
        state = tuple(np.zeros((L * dirs, Bn, Hn)) for _ in range(model.n_states))
    elif model.cell_type != "lstm":
        state = (state,)
    inp = [[torch.tensor(x[t, b]) for t in range(Tn)] for b in range(Bn)]
    inputs, traj = [], {}
    for layer in range(L):
        inputs.append(inp)
        out = []
        for b in range(Bn):
            n = lens[b]
            cols = []
            for d in range(dirs):
                s = tuple(torch.tensor(st[layer * dirs + d, b]) for st in state)
                seq, at = [s], {}
                for t in range(n) if d == 0 else range(n - 1, -1, -1):
                    s = torch_step(torch, cell, p, layer, d, inp[b][t], s)
                    seq.append(s)
                    at[t] = s[0]
                traj[layer, d, b] = seq
                cols.append([at[t] if t < n else torch.zeros(Hn, dtype=torch.float64)
                             for t in range(Tn)])  # fmt: skip
            out.append([torch.cat([c[t] for c in cols]) for t in range(Tn)])
        inp = out
    output = torch.stack([torch.stack([inp[b][t] for b in range(Bn)]) for t in range(Tn)])
    return output, inputs, traj


def torch_jacobians(torch, model, x, state, lengths):
    """{(layer, d, b, real t): ds_last/ds_t} by autograd through the unrolled steps,
    each layer's input held fixed (detached); s = (h, c) concatenated for the LSTM."""
    cell = cell_name(model)
    p = torch_params(torch, model)
    _, inputs, traj = torch_forward(torch, model, x, state, lengths, p)
    Hn = model.hidden_size
    split = (lambda s: (s[:Hn], s[Hn:])) if model.cell_type == "lstm" else (lambda s: (s,))
    out = {}
    for (layer, d, b), seq in traj.items():
        n = len(seq) - 1
        times = list(range(n)) if d == 0 else list(range(n - 1, -1, -1))
        u = [inputs[layer][b][t].detach() for t in times]

        def run(s, i):
            s = split(s)
            for j in range(i + 1, n):
                s = torch_step(torch, cell, p, layer, d, u[j], s)
            return torch.cat(s)

        for i in range(n):
            s_i = torch.cat(seq[i + 1]).detach()
            out[layer, d, b, times[i]] = torch.autograd.functional.jacobian(
                lambda s, i=i: run(s, i), s_i
            )
    return out


def assert_rel(actual, expected, rtol, what="", scale=None):
    """Relative error below ``rtol`` (relative to ``scale`` when given), same NaN pattern."""
    actual, expected = np.asarray(actual), np.asarray(expected)
    assert actual.shape == expected.shape, (what, actual.shape, expected.shape)
    np.testing.assert_array_equal(np.isnan(actual), np.isnan(expected), err_msg=what)
    ok = ~np.isnan(expected)
    ref = np.abs(expected) if scale is None else np.broadcast_to(scale, expected.shape)
    err = np.abs(actual[ok] - expected[ok]) / np.maximum(ref[ok], 1e-300)
    assert err.size == 0 or err.max() < rtol, f"{what}: max relative error {err.max():.3g}"


# -- Jacobian norms against autograd ----------------------------------------------------------


@pytest.mark.parametrize("variant", ["plain", "ragged"])
@pytest.mark.parametrize("cell", CELLS)
def test_jacobian_norms_match_autograd(cell, variant):
    torch = pytest.importorskip("torch")
    model = make_model(cell)
    x, state, lengths = make_inputs(model, variant)
    jac = torch_jacobians(torch, model, x, state, lengths)
    L, dirs = model.num_layers, model.num_directions
    S = model.hidden_size * model.n_states
    exp = {o: np.full((L, dirs, B, T), np.nan) for o in (2, "fro")}
    exp_sv = np.full((L, dirs, B, T, S), np.nan)
    for (layer, d, b, t), J in jac.items():
        exp[2][layer, d, b, t] = torch.linalg.matrix_norm(J, ord=2).item()
        exp["fro"][layer, d, b, t] = torch.linalg.matrix_norm(J, ord="fro").item()
        exp_sv[layer, d, b, t] = torch.linalg.svdvals(J).numpy()
    lens = np.full(B, T) if lengths is None else lengths
    for b in range(B):  # the reference itself: 1 at each direction's last step, NaN past the end
        np.testing.assert_allclose(exp[2][:, 0, b, lens[b] - 1], 1.0, rtol=1e-14)
        np.testing.assert_allclose(exp[2][:, 1, b, 0], 1.0, rtol=1e-14)
        assert np.isnan(exp[2][:, :, b, lens[b] :]).all()

    for ord_, n_sv in [(2, 0), ("fro", 0), (2, 3), ("fro", 2)]:
        ds = nr.diagnostics.jacobian_norms(model, x, state, lengths, ord=ord_, n_sv=n_sv)
        assert ds.jacobian_norm.dims == ("layer", "direction", "batch", "time")
        assert_rel(ds.jacobian_norm.values, exp[ord_], 1e-8, f"{cell} ord={ord_} n_sv={n_sv}")
        if n_sv:
            assert ds.jacobian_sv.dims == ("layer", "direction", "batch", "time", "sv")
            # singular values are accurate relative to the largest one (ReLU: exact zeros)
            assert_rel(ds.jacobian_sv.values, exp_sv[..., :n_sv], 1e-8, f"{cell} sv",
                       scale=exp_sv[..., :1])  # fmt: skip
        else:
            assert "jacobian_sv" not in ds


# -- gradient norms against autograd ----------------------------------------------------------

HEADS = {"": {}, "head_all": {"output_size": 2}, "head_last": {"output_size": 2,
                                                              "readout": "last"}}  # fmt: skip


@pytest.mark.parametrize(
    "cell, variant, head",
    [(c, v, "") for c in CELLS for v in ("plain", "ragged")]
    + [
        ("rnn_tanh", "ragged", "head_all"),
        ("gru_after", "ragged", "head_last"),
        ("lstm", "ragged", "head_last"),
    ],  # fmt: skip
)
def test_gradient_norms_match_autograd(cell, variant, head):
    torch = pytest.importorskip("torch")
    model = make_model(cell, **HEADS[head])
    x, state, lengths = make_inputs(model, variant)
    p = torch_params(torch, model)
    out, _, traj = torch_forward(torch, model, x, state, lengths, p)
    L, dirs = model.num_layers, model.num_directions
    lens = np.full(B, T) if lengths is None else lengths
    if head:
        if model.readout == "all":
            mask = torch.tensor((np.arange(T)[:, None] < lens[None, :])[..., None] * 1.0)
            out = (out @ p["weight_out"].T + p["bias_out"]) * mask
        else:
            top = L - 1
            feats = torch.stack([
                torch.cat([traj[top, d, b][-1][0] for d in range(dirs)]) for b in range(B)
            ])  # fmt: skip
            out = feats @ p["weight_out"].T + p["bias_out"]
    d_output = np.random.default_rng(7).standard_normal(tuple(out.shape))
    loss = (torch.tensor(d_output) * out).sum()

    # every state tensor after a step, indexed by real time
    keys, tensors = [], []
    for (layer, d, b), seq in traj.items():
        n = len(seq) - 1
        for i, s in enumerate(seq[1:]):
            keys.append((layer, d, b, i if d == 0 else n - 1 - i))
            tensors.append(s)
    flat = [t for s in tensors for t in s]
    grads = torch.autograd.grad(loss, flat, allow_unused=True)
    names = ["grad_norm", "cell_grad_norm"][: model.n_states]
    exp = {name: np.full((L, dirs, B, T), np.nan) for name in names}
    for j, k in enumerate(keys):
        for m, name in enumerate(names):
            g = grads[j * model.n_states + m]
            exp[name][k] = 0.0 if g is None else torch.linalg.vector_norm(g).item()

    ds = nr.diagnostics.gradient_norms(model, x, d_output, state, lengths)
    assert sorted(ds.data_vars) == sorted(names)
    for name in names:
        assert ds[name].dims == ("layer", "direction", "batch", "time")
        assert_rel(ds[name].values, exp[name], 1e-8, f"{cell} {variant} {head} {name}")


# -- closed forms: the linear regime ------------------------------------------------------------


def linear_relu_model(rng, hidden, w_hh, T_, B_=2, bidirectional=False, input_size=2):
    """A ReLU RNN whose pre-activations are all positive, so h_t = W h_{t-1} + W_ih x_t + b
    exactly: positive inputs, input weights and biases, nonnegative W_hh."""
    model = nr.RNN(input_size, hidden, 1, bidirectional, seed=0, nonlinearity="relu")
    for name in model.params:
        if name.startswith("weight_hh"):
            model.params[name] = w_hh[name].copy()
        else:
            model.params[name] = rng.uniform(0.1, 1.0, model.params[name].shape)
    x = rng.uniform(0.1, 1.0, (T_, B_, input_size))
    return model, x


def test_linear_regime_jacobian_norms_are_powers_of_w_hh():
    rng = np.random.default_rng(3)
    Hn, Tn = 5, 12
    w = {"weight_hh_l0": rng.uniform(0.0, 0.35, (Hn, Hn)),
         "weight_hh_l0_reverse": rng.uniform(0.0, 0.2, (Hn, Hn))}  # fmt: skip
    model, x = linear_relu_model(rng, Hn, w, Tn, bidirectional=True)
    res = model.forward(x)
    assert (res.output > 0).all()  # every pre-activation positive: the regime is linear

    ds2 = nr.diagnostics.jacobian_norms(model, x, n_sv=Hn)
    dsf = nr.diagnostics.jacobian_norms(model, x, ord="fro")
    wp = nr.diagnostics.weight_powers(model, Tn - 1)
    for d, name in enumerate(["weight_hh_l0", "weight_hh_l0_reverse"]):
        W = w[name]
        for t in range(Tn):
            k = Tn - 1 - t if d == 0 else t  # lag from the direction's last step
            P = np.linalg.matrix_power(W, k)
            for b in range(2):
                assert_rel(ds2.jacobian_norm.values[0, d, b, t], np.linalg.norm(P, 2), 1e-10)
                assert_rel(dsf.jacobian_norm.values[0, d, b, t], np.linalg.norm(P, "fro"), 1e-10)
                sv = np.linalg.svd(P)[1]
                assert_rel(ds2.jacobian_sv.values[0, d, b, t], sv, 1e-9, scale=sv[0])
            if k:
                assert_rel(wp.power_norm.sel(direction=["forward", "backward"][d], k=k).values[0],
                           np.linalg.norm(P, 2), 1e-10)  # fmt: skip
                assert_rel(ds2.jacobian_norm.values[0, d, 0, t],
                           wp.power_norm.values[0, d, k - 1], 1e-10)  # fmt: skip
        rho = np.abs(np.linalg.eigvals(W)).max()
        assert_rel(wp.spectral_radius.values[0, d], rho, 1e-10)


def test_spectral_norms_with_clustered_singular_values_match_svd():
    # orthogonal W_hh and small inputs: products of nearly orthogonal step Jacobians, whose
    # top singular values nearly coincide (Lanczos' hard case: its restart, the dense path)
    rng = np.random.default_rng(5)
    Hn, Tn = 48, 30
    model = nr.RNN(2, Hn, seed=0, init={"weight_hh": "orthogonal"})
    x = 0.05 * rng.standard_normal((Tn, 2, 2))
    h = model.forward(x).output
    W = model.params["weight_hh_l0"]
    got = nr.diagnostics.jacobian_norms(model, x).jacobian_norm.values[0, 0]
    for b in range(2):
        P = np.eye(Hn)
        for t in range(Tn - 1, -1, -1):
            assert_rel(got[b, t], np.linalg.norm(P, 2), 1e-10, f"b={b} t={t}")
            P = P @ ((1 - h[t, b] ** 2)[:, None] * W)  # ds_T/ds_{t-1} = P_t J_t


def scaled_identity_relu_rnn(a, Tn):
    """Linear-regime ReLU RNN with W_hh = a I: ||ds_T/ds_t|| = a^(T-1-t) exactly."""
    rng = np.random.default_rng(0)
    model, x = linear_relu_model(rng, 3, {"weight_hh_l0": a * np.eye(3)}, Tn, B_=1)
    return model, x


@pytest.mark.parametrize("a", [0.1, 10.0])
def test_linear_regime_norms_keep_range_within_1e150(a):
    Tn = 140  # a^139 = 1e+-139: representable, and its square too
    model, x = scaled_identity_relu_rnn(a, Tn)
    lag = Tn - 1 - np.arange(Tn)
    want = a**lag
    for o in (2, "fro"):
        got = nr.diagnostics.jacobian_norms(model, x, ord=o).jacobian_norm.values[0, 0, 0]
        assert_rel(got, want * (np.sqrt(3) if o == "fro" else 1), 1e-12, f"a={a} ord={o}")


def test_vanishing_norms_keep_the_float64_range():
    model, x = scaled_identity_relu_rnn(1e-3, 60)  # lags up to 59: 1e-177
    want = 1e-3 ** (59 - np.arange(60))
    for o in (2, "fro"):
        got = nr.diagnostics.jacobian_norms(model, x, ord=o).jacobian_norm.values[0, 0, 0]
        assert_rel(got, want * (np.sqrt(3) if o == "fro" else 1), 1e-12, f"ord={o}")


def test_exploding_norms_keep_the_float64_range():
    model, x = scaled_identity_relu_rnn(1e3, 60)  # lags up to 59: 1e177, states ~1e180
    assert np.isfinite(model.forward(x).output).all()
    want = 1e3 ** (59 - np.arange(60))
    for o in (2, "fro"):
        got = nr.diagnostics.jacobian_norms(model, x, ord=o).jacobian_norm.values[0, 0, 0]
        assert_rel(got, want * (np.sqrt(3) if o == "fro" else 1), 1e-12, f"ord={o}")


def orthogonal(rng, n):
    q, r = np.linalg.qr(rng.standard_normal((n, n)))
    return q * np.sign(np.diag(r))


@pytest.mark.parametrize(
    "cell, scales",
    [
        ("rnn_tanh", (2.0,)),
        ("rnn_relu", (0.5,)),
        ("lstm", (2.0, 0.5, 1.0, 0.9)),
        ("gru_after", (0.5, 2.0, 1.0)),
        ("gru_before", (1.1, 0.5, 2.0)),
    ],  # fmt: skip
)
def test_weight_powers_of_scaled_orthogonal_matrices(cell, scales):
    rng = np.random.default_rng(5)
    Hn, kmax = 6, 50
    model = make_model(cell, num_layers=2, bidirectional=True, hidden=Hn)
    for name in model.params:
        if name.startswith("weight_hh"):
            model.params[name] = np.concatenate([a * orthogonal(rng, Hn) for a in scales])
    ds = nr.diagnostics.weight_powers(model, kmax)
    np.testing.assert_array_equal(ds.k.values, np.arange(1, kmax + 1))
    gates = {"rnn": None, "lstm": "ifgo", "gru": "rzn"}[model.cell_type]
    k = np.arange(1, kmax + 1)
    for g, a in enumerate(scales):
        sel = {} if gates is None else {"gate": gates[g]}
        power = ds.power_norm.sel(**sel).values  # (layer, direction, k)
        assert power.shape == (2, 2, kmax)
        assert_rel(power, np.broadcast_to(a**k, power.shape), 1e-10, f"{cell} gate {g}")
        assert_rel(ds.spectral_radius.sel(**sel).values, np.full((2, 2), a), 1e-10)
        if a == 2.0:
            assert (power[..., -1] > 1e15).all()  # 2^50 explodes
        if a == 0.5:
            assert (power[..., -1] < 1e-15).all()  # 0.5^50 vanishes
    if gates is not None:
        assert list(ds.gate.values) == list(gates)
        assert ds.power_norm.dims == ("layer", "direction", "gate", "k")
    else:
        assert ds.power_norm.dims == ("layer", "direction", "k")


def test_weight_powers_overflow_is_inf():
    model = make_model("rnn_tanh", num_layers=1, bidirectional=False, hidden=3)
    model.params["weight_hh_l0"] = 1e30 * np.eye(3)
    ds = nr.diagnostics.weight_powers(model, 20)
    assert np.isinf(ds.power_norm.values[0, 0, -1])
    assert_rel(ds.power_norm.values[0, 0, :5], 1e30 ** np.arange(1, 6), 1e-12)


# -- Lyapunov spectrum --------------------------------------------------------------------------


@pytest.mark.parametrize("cell", ["rnn_tanh", "lstm", "gru_after", "gru_before"])
def test_lyapunov_sum_equals_mean_log_det(cell):
    torch = pytest.importorskip("torch")
    model = make_model(cell)
    x, state, lengths = make_inputs(model, "ragged")
    warmup = 1
    p = torch_params(torch, model)
    _, inputs, traj = torch_forward(torch, model, x, state, lengths, p)
    Hn = model.hidden_size
    split = (lambda s: (s[:Hn], s[Hn:])) if model.cell_type == "lstm" else (lambda s: (s,))
    name = cell_name(model)
    L, dirs = model.num_layers, model.num_directions
    expected = np.full((L, dirs, B), np.nan)
    for (layer, d, b), seq in traj.items():
        n = len(seq) - 1
        times = list(range(n)) if d == 0 else list(range(n - 1, -1, -1))
        logdets = []
        for i in range(n):
            u = inputs[layer][b][times[i]].detach()
            J = torch.autograd.functional.jacobian(
                lambda s, u=u: torch.cat(torch_step(torch, name, p, layer, d, u, split(s))),
                torch.cat(seq[i]).detach(),
            )
            logdets.append(torch.linalg.slogdet(J)[1].item())
        if n > warmup:
            expected[layer, d, b] = np.mean(logdets[warmup:])

    ds = nr.diagnostics.lyapunov_spectrum(model, x, state, lengths, warmup=warmup)
    lam = ds.lyapunov.values
    S = Hn * model.n_states
    assert lam.shape == (L, dirs, B, S)
    np.testing.assert_array_equal(ds.exponent.values, np.arange(S))
    # length-1 sequence: no step after the warmup
    assert np.isnan(lam[:, :, list(LENGTHS).index(1)]).all()
    ok = ~np.isnan(expected)
    np.testing.assert_array_equal(np.isnan(lam).all(-1), ~ok)
    # the default interval keeps half the digits of the weakest direction per QR (1.1e-9
    # seen on the LSTM's 8 exponents); reorthonormalize=1 agrees to 1.1e-13
    np.testing.assert_allclose(lam.sum(-1)[ok], expected[ok], rtol=0, atol=1e-8)
    assert (np.diff(lam[ok], axis=-1) <= 0).all()  # sorted descending


def random_tanh_rnn(gain, Hn=32, Tn=500, Bn=2, seed=11):
    rng = np.random.default_rng(seed)
    model = nr.RNN(1, Hn, seed=0)
    model.params["weight_hh_l0"] = gain * rng.normal(0.0, 1.0 / np.sqrt(Hn), (Hn, Hn))
    model.params["weight_ih_l0"] = np.full((Hn, 1), 0.01)
    model.params["bias_ih_l0"] = np.zeros(Hn)
    model.params["bias_hh_l0"] = np.zeros(Hn)
    x = rng.standard_normal((Tn, Bn, 1))
    h0 = rng.standard_normal((1, Bn, Hn))
    return model, x, h0


@pytest.mark.parametrize("gain, sign", [(0.5, -1), (2.0, 1)])
def test_lyapunov_sign_follows_the_gain(gain, sign):
    model, x, h0 = random_tanh_rnn(gain)
    ds = nr.diagnostics.lyapunov_spectrum(model, x, h0, n_exponents=3, warmup=100)
    lam = ds.lyapunov.values[0, 0]  # (batch, exponent)
    assert lam.shape == (2, 3)
    assert (np.diff(lam, axis=-1) <= 0).all()
    assert (np.sign(lam[:, 0]) == sign).all(), lam
    if gain == 0.5:  # near the fixed point 0: about log of the spectral radius of W_hh
        rho = np.abs(np.linalg.eigvals(model.params["weight_hh_l0"])).max()
        assert (lam[:, 0] < np.log(rho) + 0.01).all()
    else:
        assert (lam[:, 0] > 0.05).all()


def test_lyapunov_of_diagonal_linear_rnn_is_log_d():
    # J_t = diag(d) at every step. From the random orthonormal start the QR iteration
    # aligns with the coordinate axes like (1.05/1.2)^t, so after a warmup of 250 steps the
    # exponents are log d to rounding; without warmup the transient is O(1/T).
    rng = np.random.default_rng(4)
    d = np.array([0.9, 1.2, 0.5, 1.05, 0.7])
    want = np.sort(np.log(d))[::-1]
    model, x = linear_relu_model(rng, 5, {"weight_hh_l0": np.diag(d)}, 300, B_=3)
    assert (model.forward(x).output > 0).all()
    for n in (None, 5):
        ds = nr.diagnostics.lyapunov_spectrum(model, x, n_exponents=n, warmup=250)
        lam = ds.lyapunov.values[0, 0]
        np.testing.assert_allclose(lam, np.broadcast_to(want, lam.shape), rtol=0, atol=1e-10)
    assert ds.attrs["warmup"] == 250
    lam = nr.diagnostics.lyapunov_spectrum(model, x).lyapunov.values[0, 0]
    np.testing.assert_allclose(lam, np.broadcast_to(want, lam.shape), rtol=0, atol=0.02)
    # the sum is exact at any length: it is the mean log|det J_t| = sum(log d)
    np.testing.assert_allclose(lam.sum(axis=-1), np.log(d).sum(), rtol=1e-12)


@pytest.mark.parametrize("reorthonormalize", [1, None])
@pytest.mark.parametrize("smaller", [(), (0.3, 0.2, 0.4, 0.6, 0.1, 0.35, 0.25)],
                         ids=["5-units", "12-units"])  # fmt: skip
def test_lyapunov_partial_spectrum_of_diagonal_linear_rnn_is_the_largest_log_d(
    smaller, reorthonormalize
):
    # the random orthonormal start converges to the top-2 subspace like (1.05/1.2)^t, even
    # though the coordinate vectors e_0, e_1 span an invariant subspace of diag(d); with 12
    # units, two exponents take the kernel's other path after each QR (the thin Q formed,
    # where 5 units apply its reflectors to the step Jacobian)
    rng = np.random.default_rng(4)
    d = np.array([0.9, 1.2, 0.5, 1.05, 0.7, *smaller])
    model, x = linear_relu_model(rng, d.size, {"weight_hh_l0": np.diag(d)}, 300, B_=3)
    lam = nr.diagnostics.lyapunov_spectrum(model, x, n_exponents=2, warmup=250,
                                           reorthonormalize=reorthonormalize)  # fmt: skip
    lam = lam.lyapunov.values[0, 0]
    want = np.sort(np.log(d))[::-1][:2]  # log 1.2, log 1.05
    np.testing.assert_allclose(lam, np.broadcast_to(want, lam.shape), rtol=0, atol=1e-12)


def test_lyapunov_adaptive_interval_redoes_a_stretch_that_spread_too_far():
    # sequence 1 has a step far more contracting than the steps before it: a stretch chosen
    # from the last one's spread lost its weakest direction (-2.17 for -2.38) until the
    # kernel redid such a stretch a step at a time
    model = nr.RNN(3, 6, seed=1, init={"weight_hh": ("spectral", {"radius": 1.5})})
    x = np.random.default_rng(11).standard_normal((40, 3, 3))
    every = nr.diagnostics.lyapunov_spectrum(model, x, warmup=4, reorthonormalize=1)
    adaptive = nr.diagnostics.lyapunov_spectrum(model, x, warmup=4)
    np.testing.assert_allclose(adaptive.lyapunov.values, every.lyapunov.values, rtol=0,
                               atol=2e-8)  # fmt: skip


@pytest.mark.parametrize("gain", [0.8, 3.0])
def test_lyapunov_reorthonormalised_every_few_steps_is_every_step(gain):
    """The adaptive interval (the default) against the every-step QR: the whole spectrum of a
    chaotic (g = 3: exponents spread over 8 nats per step) and an ordered tanh RNN, and a
    fixed interval on the largest exponents (its weak directions lose digits at g = 3)."""
    init = {"weight_hh": ("glorot_normal", {"gain": gain}), "weight_ih": "zeros", "bias": "zeros"}
    model = nr.RNN(1, 32, seed=0, init=init)
    h0 = np.random.default_rng(0).standard_normal((1, 2, 32))
    x = np.zeros((300, 2, 1))

    def spectrum(k, n=None):
        ds = nr.diagnostics.lyapunov_spectrum(model, x, h0, n_exponents=n, warmup=50,
                                              reorthonormalize=k)  # fmt: skip
        return ds.lyapunov.values[0, 0]

    every = spectrum(1)
    assert np.ptp(every) > (8 if gain == 3.0 else 0.5)
    # half the digits of the weakest direction per QR: 5.2e-9 seen at g = 3
    np.testing.assert_allclose(spectrum(None), every, rtol=0, atol=2e-8)
    # the four largest: 1.3e-12 relative apart at g = 3 (5e-14 on an exponent of -0.04)
    np.testing.assert_allclose(spectrum(None, 4), spectrum(1, 4), rtol=1e-11, atol=0)
    np.testing.assert_allclose(spectrum(5)[:, :3], every[:, :3], rtol=1e-9, atol=0)
    with pytest.raises(ValueError, match="reorthonormalize must be a positive integer"):
        spectrum(0)


# -- dataset schema -------------------------------------------------------------------------------


def check_schema(ds, model, dims):
    for name, var in ds.data_vars.items():
        assert var.dims == dims[name], name
        assert isinstance(var.attrs.get("units"), str) and var.attrs["units"], name
        assert isinstance(var.attrs.get("description"), str) and var.attrs["description"], name
    assert json.loads(ds.attrs["config"]) == model.config
    assert nr.results.config(ds) == model.config
    assert ds.attrs["cell"] == model.cell_name
    np.testing.assert_array_equal(ds.layer.values, np.arange(model.num_layers))
    assert list(ds.direction.values) == ["forward", "backward"][: model.num_directions]
    for dim in ds.dims:
        assert dim in ds.coords, dim


@pytest.mark.parametrize("cell", ["rnn_tanh", "lstm", "gru_before"])
@pytest.mark.parametrize("num_layers, bidirectional", [(1, False), (2, True)])
def test_dataset_schema(cell, num_layers, bidirectional):
    model = make_model(cell, num_layers, bidirectional)
    x, state, lengths = make_inputs(model, "ragged")
    lt = ("layer", "direction", "batch", "time")

    ds = nr.diagnostics.jacobian_norms(model, x, state, lengths, n_sv=2)
    check_schema(ds, model, {"jacobian_norm": lt, "jacobian_sv": lt + ("sv",)})
    np.testing.assert_array_equal(ds.time.values, np.arange(T))
    np.testing.assert_array_equal(ds.batch.values, np.arange(B))
    assert ds.sizes == {"layer": num_layers, "direction": model.num_directions, "batch": B,
                        "time": T, "sv": 2}  # fmt: skip
    assert nr.diagnostics.jacobian_norms(model, x, ord="fro").attrs["ord"] == "fro"

    d_output = np.ones((T, B, model.num_directions * H))
    ds = nr.diagnostics.gradient_norms(model, x, d_output, state, lengths)
    names = {"grad_norm": lt, "cell_grad_norm": lt} if cell == "lstm" else {"grad_norm": lt}
    check_schema(ds, model, names)
    np.testing.assert_array_equal(ds.time.values, np.arange(T))

    ds = nr.diagnostics.lyapunov_spectrum(model, x, state, lengths, n_exponents=3)
    check_schema(ds, model, {"lyapunov": ("layer", "direction", "batch", "exponent")})
    np.testing.assert_array_equal(ds.exponent.values, np.arange(3))
    assert ds.lyapunov.attrs["units"] == "nats per step"

    ds = nr.diagnostics.weight_powers(model, 4)
    gated = ("gate",) if model.cell_type != "rnn" else ()
    check_schema(ds, model, {"power_norm": ("layer", "direction") + gated + ("k",),
                             "spectral_radius": ("layer", "direction") + gated})  # fmt: skip
    np.testing.assert_array_equal(ds.k.values, np.arange(1, 5))


def test_ragged_values_are_nan_exactly_past_each_end():
    model = make_model("gru_after")
    x, state, lengths = make_inputs(model, "ragged")
    ds = nr.diagnostics.jacobian_norms(model, x, state, lengths)
    past = np.arange(T)[None, :] >= LENGTHS[:, None]  # (batch, time)
    v = ds.jacobian_norm.values
    np.testing.assert_array_equal(np.isnan(v), np.broadcast_to(past, v.shape))
    np.testing.assert_allclose(v[:, 0, np.arange(B), LENGTHS - 1], 1.0, rtol=1e-14)
    np.testing.assert_allclose(v[:, 1, :, 0], 1.0, rtol=1e-14)


# -- validation ----------------------------------------------------------------------------------


def test_validation_errors():
    model = make_model("lstm", num_layers=1, bidirectional=False)
    x, _, _ = make_inputs(model, "plain")
    jn, ly = nr.diagnostics.jacobian_norms, nr.diagnostics.lyapunov_spectrum
    for bad in (1, "nuc", "2", None, np.inf):
        with pytest.raises(ValueError, match="ord"):
            jn(model, x, ord=bad)
    for bad in (-1, True, 1.5, "2"):
        with pytest.raises(ValueError, match="n_sv"):
            jn(model, x, n_sv=bad)
    with pytest.raises(ValueError, match="n_exponents.*8.*9"):
        ly(model, x, n_exponents=2 * H + 1)
    with pytest.raises(ValueError, match="n_exponents"):
        ly(model, x, n_exponents=0)
    with pytest.raises(TypeError, match="n_exponents"):
        ly(model, x, n_exponents=2.0)
    with pytest.raises(ValueError, match="warmup"):
        ly(model, x, warmup=T)
    for bad in (-1, True, 1.0):
        with pytest.raises(ValueError, match="warmup"):
            ly(model, x, warmup=bad)
    with pytest.raises(ValueError, match="kmax"):
        nr.diagnostics.weight_powers(model, 0)
    with pytest.raises(ValueError, match="x must have shape"):
        jn(model, x[..., :2])
    with pytest.raises(ValueError, match="d_output"):
        nr.diagnostics.gradient_norms(model, x, np.ones((T, B, H + 1)))


def test_progress_bar_starts_at_the_first_step_done():
    # a first use compiles the kernel before any step is done: no bar standing at 0 then
    from types import SimpleNamespace

    from numrnn.diagnostics import _Progress

    model = nr.RNN(2, 3, num_layers=2, seed=0)
    tp = SimpleNamespace(K=1, packed=SimpleNamespace(lengths_or_full=lambda: np.array([4, 4])))
    progress = _Progress("test", model)
    first = progress.layer(tp)
    first(0)
    assert progress.bar is None
    first(3)
    assert (progress.bar.n, progress.bar.total) == (3, 16)
    progress.layer(tp)(2)  # the second layer's steps come after the first's 8
    assert progress.bar.n == 10
    progress.close()
