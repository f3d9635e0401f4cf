"""Slow, obviously-correct NumPy reference for the recurrent cells.

Everything here is written straight from the equations, one Python loop per
time step and per sequence, with no attempt at speed.  It is the oracle that
numrnn's kernels are judged against (together with PyTorch and the central
finite differences of :func:`finite_difference_grads`), so keep it plain.

All computations are done in float64, whatever the dtype of the inputs.

Equations (PyTorch conventions, gate order as in PyTorch)::

    RNN:   h' = act(W_ih x + b_ih + W_hh h + b_hh),       act = tanh or relu
    LSTM:  i, f, g, o = split(W_ih x + b_ih + W_hh h + b_hh, 4)
           c' = sigmoid(f) * c + sigmoid(i) * tanh(g)
           h' = sigmoid(o) * tanh(c')
    GRU:   r = sigmoid(W_ir x + b_ir + W_hr h + b_hr)
           z = sigmoid(W_iz x + b_iz + W_hz h + b_hz)
           n = tanh(W_in x + b_in + r * (W_hn h + b_hn))      reset_after=True (PyTorch)
           n = tanh(W_in x + b_in + W_hn (r * h) + b_hn)      reset_after=False (Cho et al.)
           h' = (1 - z) * n + z * h

Variable lengths follow ``pack_padded_sequence`` semantics: sequence ``b`` only
sees its first ``lengths[b]`` steps; its output is zero afterwards, its final
state is the state after its own last step, and the backward direction starts
at its own last step.
"""

import numpy as np

CELLS = ("rnn", "lstm", "gru")
GATES = {"rnn": 1, "lstm": 4, "gru": 3}
# names used in test parametrizations -> (cell, nonlinearity)
CELL_SPECS = {
    "rnn_tanh": ("rnn", "tanh"),
    "rnn_relu": ("rnn", "relu"),
    "lstm": ("lstm", "tanh"),
    "gru": ("gru", "tanh"),
}


def sigmoid(a):
    return 1.0 / (1.0 + np.exp(-a))


def param_names(num_layers=1, bidirectional=False):
    """PyTorch parameter names, in PyTorch's order."""
    names = []
    for layer in range(num_layers):
        for suffix in ("", "_reverse") if bidirectional else ("",):
            for kind in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
                names.append(f"{kind}_l{layer}{suffix}")
    return names


def param_shapes(cell, input_size, hidden_size, num_layers=1, bidirectional=False):
    """Dict name -> shape of the parameters, as in PyTorch."""
    G, H = GATES[cell], hidden_size
    dirs = 2 if bidirectional else 1
    shapes = {}
    for name in param_names(num_layers, bidirectional):
        layer = int(name.split("_l")[1].split("_")[0])
        d_in = input_size if layer == 0 else dirs * H
        if name.startswith("weight_ih"):
            shapes[name] = (G * H, d_in)
        elif name.startswith("weight_hh"):
            shapes[name] = (G * H, H)
        else:
            shapes[name] = (G * H,)
    return shapes


def random_params(rng, cell, input_size, hidden_size, num_layers=1, bidirectional=False, scale=0.5):
    """Random float64 parameters, uniform in [-scale, scale]."""
    shapes = param_shapes(cell, input_size, hidden_size, num_layers, bidirectional)
    return {name: rng.uniform(-scale, scale, size=shape) for name, shape in shapes.items()}


def random_state(rng, cell, num_layers, dirs, B, H, scale=0.5):
    """Random initial state (or d_state) in PyTorch's layout; a tuple (h, c) for LSTM."""
    shape = (num_layers * dirs, B, H)
    if cell == "lstm":
        return (rng.uniform(-scale, scale, shape), rng.uniform(-scale, scale, shape))
    return rng.uniform(-scale, scale, shape)


# --------------------------------------------------------------------------- cells
# Each step function takes one sequence's input vector x (D,), hidden h (H,) and,
# for the LSTM, cell c (H,); it returns the new (h, c) (c is None except for LSTM).


def rnn_step(x, h, c, w_ih, w_hh, b_ih, b_hh, nonlinearity="tanh", reset_after=True):
    a = w_ih @ x + b_ih + w_hh @ h + b_hh
    if nonlinearity == "tanh":
        return np.tanh(a), None
    if nonlinearity == "relu":
        return np.maximum(a, 0.0), None
    raise ValueError(f"unknown nonlinearity {nonlinearity!r}")


def lstm_step(x, h, c, w_ih, w_hh, b_ih, b_hh, nonlinearity="tanh", reset_after=True):
    gates = w_ih @ x + b_ih + w_hh @ h + b_hh
    i, f, g, o = np.split(gates, 4)
    i, f, g, o = sigmoid(i), sigmoid(f), np.tanh(g), sigmoid(o)
    c_new = f * c + i * g
    h_new = o * np.tanh(c_new)
    return h_new, c_new


def gru_step(x, h, c, w_ih, w_hh, b_ih, b_hh, nonlinearity="tanh", reset_after=True):
    H = h.shape[0]
    w_ir, w_iz, w_in = np.split(w_ih, 3)
    w_hr, w_hz, w_hn = np.split(w_hh, 3)
    b_ir, b_iz, b_in = np.split(b_ih, 3)
    b_hr, b_hz, b_hn = np.split(b_hh, 3)
    assert w_hn.shape == (H, H)
    r = sigmoid(w_ir @ x + b_ir + w_hr @ h + b_hr)
    z = sigmoid(w_iz @ x + b_iz + w_hz @ h + b_hz)
    if reset_after:
        n = np.tanh(w_in @ x + b_in + r * (w_hn @ h + b_hn))
    else:
        n = np.tanh(w_in @ x + b_in + w_hn @ (r * h) + b_hn)
    h_new = (1.0 - z) * n + z * h
    return h_new, None


STEPS = {"rnn": rnn_step, "lstm": lstm_step, "gru": gru_step}


# --------------------------------------------------------------------------- forward


def naive_forward(
    cell,
    params,
    x,
    state=None,
    lengths=None,
    *,
    num_layers=1,
    bidirectional=False,
    nonlinearity="tanh",
    reset_after=True,
):
    """Forward pass of a (stacked, optionally bidirectional) RNN, LSTM or GRU.

    Parameters
    ----------
    cell : {"rnn", "lstm", "gru"}
    params : dict of str -> ndarray
        PyTorch names and shapes (see :func:`param_shapes`).
    x : ndarray, shape (T, B, D)
        Time-major input.
    state : ndarray (layers*dirs, B, H), or tuple (h0, c0) of those for LSTM, optional
        Initial state, index ``layer * dirs + direction``; None means zeros.
    lengths : int array (B,), optional
        Sequence lengths in 1..T; None means all T.

    Returns
    -------
    output : ndarray, shape (T, B, dirs*H)
        Last layer's hidden states, forward direction first; zero past each length.
    final_state : ndarray (layers*dirs, B, H), or tuple (h_n, c_n) for LSTM
    """
    if cell not in STEPS:
        raise ValueError(f"unknown cell {cell!r}")
    step = STEPS[cell]
    x = np.asarray(x, dtype=np.float64)
    T, B, _ = x.shape
    dirs = 2 if bidirectional else 1
    H = params["weight_hh_l0"].shape[1]
    p = {name: np.asarray(value, dtype=np.float64) for name, value in params.items()}

    if state is None:
        h0 = np.zeros((num_layers * dirs, B, H))
        c0 = np.zeros((num_layers * dirs, B, H))
    elif cell == "lstm":
        h0 = np.asarray(state[0], dtype=np.float64)
        c0 = np.asarray(state[1], dtype=np.float64)
    else:
        h0 = np.asarray(state, dtype=np.float64)
        c0 = np.zeros_like(h0)  # unused
    lengths = np.full(B, T) if lengths is None else np.asarray(lengths)

    h_n = np.zeros((num_layers * dirs, B, H))
    c_n = np.zeros((num_layers * dirs, B, H))
    layer_input = x
    for layer in range(num_layers):
        outputs = []
        for direction in range(dirs):
            suffix = f"_l{layer}" + ("_reverse" if direction == 1 else "")
            w_ih = p["weight_ih" + suffix]
            w_hh = p["weight_hh" + suffix]
            b_ih = p["bias_ih" + suffix]
            b_hh = p["bias_hh" + suffix]
            index = layer * dirs + direction
            out = np.zeros((T, B, H))
            for b in range(B):
                L = int(lengths[b])
                times = range(L) if direction == 0 else range(L - 1, -1, -1)
                h, c = h0[index, b], c0[index, b]
                for t in times:
                    h, c = step(
                        layer_input[t, b],
                        h,
                        c,
                        w_ih,
                        w_hh,
                        b_ih,
                        b_hh,
                        nonlinearity=nonlinearity,
                        reset_after=reset_after,
                    )
                    out[t, b] = h
                h_n[index, b] = h
                if cell == "lstm":
                    c_n[index, b] = c
            outputs.append(out)
        layer_input = np.concatenate(outputs, axis=-1)

    final_state = (h_n, c_n) if cell == "lstm" else h_n
    return layer_input, final_state


def naive_loss(cell, params, x, state, lengths, d_output, d_state, **kwargs):
    """L = sum(d_output * output) + sum(d_state * final_state) (both parts for LSTM)."""
    output, final = naive_forward(cell, params, x, state, lengths, **kwargs)
    loss = np.sum(d_output * output)
    if d_state is not None:
        if cell == "lstm":
            loss += np.sum(d_state[0] * final[0]) + np.sum(d_state[1] * final[1])
        else:
            loss += np.sum(d_state * final)
    return float(loss)


# --------------------------------------------------------------------------- gradients


def finite_difference_grads(f, arrays, eps=1e-6):
    """Central finite differences of a scalar function of several arrays.

    Parameters
    ----------
    f : callable
        ``f(arrays) -> float`` where ``arrays`` is a dict of float64 ndarrays.
    arrays : dict of str -> ndarray
        Point at which to differentiate; not modified (copies are perturbed).
    eps : float
        Step: ``df/da[i] ~ (f(a + eps e_i) - f(a - eps e_i)) / (2 eps)``.

    Returns
    -------
    dict of str -> ndarray
        Same keys and shapes as ``arrays``.
    """
    point = {name: np.array(value, dtype=np.float64) for name, value in arrays.items()}
    grads = {}
    for name, a in point.items():
        g = np.zeros_like(a)
        for index in np.ndindex(a.shape):
            original = a[index]
            a[index] = original + eps
            f_plus = f(point)
            a[index] = original - eps
            f_minus = f(point)
            a[index] = original
            g[index] = (f_plus - f_minus) / (2.0 * eps)
        grads[name] = g
    return grads


def rel_err(a, b):
    """max|a - b| / max|b| (0 when both are all zero)."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    assert a.shape == b.shape, (a.shape, b.shape)
    num = np.max(np.abs(a - b)) if a.size else 0.0
    den = np.max(np.abs(b)) if b.size else 0.0
    if num == 0.0:
        return 0.0
    return num / den if den > 0 else np.inf
