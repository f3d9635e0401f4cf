"""Elman RNN cell, h_t = act(W_ih x_t + b_ih + W_hh h_{t-1} + b_hh), act = tanh or ReLU.

Forward, BPTT and the step Jacobian live side by side. Each kernel runs the whole time
loop in compiled code: ``rnn_forward`` allocates its outputs and hands (member, block of
rows) work items to ``_forward_items``, a serial ``nogil`` kernel run on threads
(``_parallel.run_items``); likewise the backward pass.

Shared array contract (all three cells; see ``numrnn/nn/cells.py`` for the interface)
--------------------------------------------------------------------------------
Every array has a leading member axis K: a single network is an ensemble of one, and an
ensemble of K networks of the same shape runs in one call. Work is split into
independent (member, block of rows) items, each running the whole time loop on its own
thread (``_parallel.py``), without ``prange``: Numba's parallel lowering of these loops
took most of the time to first result.

x : (Kx, T, B, D), Kx in {1, K}
    The layer's input (one array for all members when Kx = 1, as for an ensemble's
    shared data). The forward kernels project each step's rows, ``x_t @ W_ih.T + b_ih``,
    just before that step's recurrent product (``linalg.project``): the projection of all
    steps is never written out as a trajectory-sized array.
batch_sizes : (T,) int64
    Number of active sequences at each step. The batch is sorted by length,
    longest first, so the active rows are always a prefix ``[:n]``: inactive
    rows are not computed and their state is carried unchanged (through the
    caller's gather of final states), exactly like PyTorch's packed sequences.
hs : (K, T+1, B, H)
    ``hs[:, 0]`` is the initial state, ``hs[:, t+1]`` the state after step t; rows
    past a sequence's end are zero, so ``hs[:, 1:]`` is the layer's output.
dout : (K, T, B, H)
    Gradient of the loss w.r.t. the output ``hs[:, 1:]`` (from the layer above or
    the loss); rows past a sequence's end are ignored.
xin : (Kx, T, B, D)
    The layer's input x again, given to BPTT for the input weights' gradient.
wih : (K, G, D)
    ``W_ih``, given to BPTT for the input's gradient dL/dx, each step's rows multiplied
    inside the time loop where it splits a member's rows into several blocks
    (``linalg.loop_input_weights``), else after it; (K, G, 0) for none.
norms : (K, T, B) or (0, 0, 0)
    When its shape is (K, T, B), the BPTT kernel writes the 2-norm of the total
    derivative dL/dh_t there (NaN past a sequence's end).
Weight gradients, of W_ih and W_hh together, are one pass of matrix products over the
gate gradients after the time loop (``linalg.matmul_tn``).
"""

import numpy as np
from numba import njit

from ._compiling import before_forward, callee
from ._config import FASTMATH, product_plan
from ._math import tanh
from ._parallel import active_end, clear, loop_blocks, run_items, span
from ._views import borrow
from .linalg import (
    input_grad,
    loop_input_weights,
    loop_weights,
    matmul_tn,
    project,
    step_dot,
    step_weights,
)


def rnn_forward(x, wih_t, bih, whh_t, bhh, h0, batch_sizes, relu):
    """Run the Elman recurrence over all steps.

    Parameters
    ----------
    x : (Kx, T, B, D) the layer's input, Kx in {1, K}.
    wih_t : (K, D, H) ``W_ih.T``, C-contiguous.
    bih : (K, H)
    whh_t : (K, H, H) ``W_hh.T``, C-contiguous.
    bhh : (K, H)
    h0 : (K, B, H)
    batch_sizes : (T,) int64
    relu : bool, ReLU instead of tanh.

    Returns
    -------
    hs : (K, T+1, B, H) all states; the only thing BPTT needs (the activation's
        derivative is a function of its output). Memory: K (T+1) B H numbers.
    """
    before_forward("rnn", _forward_items, x.dtype)  # a second process may start
    K, H = whh_t.shape[:2]
    hs = np.empty((K, x.shape[1] + 1, x.shape[2], H), x.dtype)
    hs[:, 0] = h0
    items, per_member, rows = loop_blocks(K, x.shape[2], 1, H, x.shape[1])
    plan = product_plan()
    whh, wih = step_weights(whh_t, rows, plan), step_weights(wih_t, rows, plan)
    whh_t, wih_t = loop_weights(whh_t, rows, plan), loop_weights(wih_t, rows, plan)
    run_items(_forward_items, items, x, wih_t, wih, bih, whh_t, whh, bhh, hs, batch_sizes, relu,
              per_member, rows, plan)  # fmt: skip
    return hs


@njit(cache=True, nogil=True, fastmath=FASTMATH, error_model="numpy")
def _forward_items(x, wih_t, wih, bih, whh_t, whh, bhh, hs, batch_sizes, relu, per_member, rows,
                   plan, first, step):  # fmt: skip
    """The work items ``range(first, K * per_member, step)`` of :func:`rnn_forward`, which
    writes ``hs[:, 1:]``; ``wih``, ``whh``: :func:`step_weights` of the transposes."""
    # the arguments' views uncounted (the caller holds them; see _views)
    x, wih_t, wih, bih, whh_t, whh, bhh, hs, batch_sizes = borrow(
        x, wih_t, wih, bih, whh_t, whh, bhh, hs, batch_sizes
    )
    K, T1, B, H = hs.shape
    zero = x.dtype.type(0)
    scratch = np.empty(rows * H, x.dtype)  # project's BLAS result
    for item in range(first, K * per_member, step):
        m, lo, hi = span(item, per_member, rows, B)
        mx = m if x.shape[0] == K else 0
        bias = bhh[m]
        for t in range(T1 - 1):
            n = active_end(batch_sizes, t, lo, hi)
            if n == lo:  # the block's sequences have all ended (lengths only decrease)
                clear(hs, m, t + 1, T1, lo, hi)
                break
            clear(hs, m, t + 1, t + 2, n, hi)
            h = hs[m, t + 1]
            # W_hh h_{t-1} + W_ih x_t + b_ih of the block's rows, in place
            step_dot(hs[m, t][lo:n], whh_t[m], whh[m], h[lo:n], plan)
            project(x[mx, t][lo:n], wih_t[m], wih[m], bih[m], h[lo:n], True, scratch, plan)
            # the bias row by row, then the activation over the block's rows as one flat
            # loop: over a row of H < 16 units the vectorised loop (16 at a time) never
            # runs, and a scalar tanh costs about 12 ns
            block = h[lo:n]
            for b in range(n - lo):
                hb = block[b]
                for j in range(H):
                    hb[j] += bias[j]
            flat = block.ravel()
            for i in range(flat.size):
                a = flat[i]
                # `a < 0` is False for NaN, so NaN propagates through ReLU as in torch
                flat[i] = (zero if a < zero else a) if relu else tanh(a)


def rnn_backward(hs, whh, wih, xin, dout, dhT, batch_sizes, relu, norms):
    """BPTT through :func:`rnn_forward`.

    Parameters
    ----------
    hs : (K, T+1, B, H) states saved by the forward pass.
    whh : (K, H, H) ``W_hh`` (not transposed), C-contiguous.
    wih : (K, H, D) ``W_ih`` (not transposed), C-contiguous, for the input's gradient; or
        (K, H, 0) for none.
    xin : (Kx, T, B, D) the layer's input.
    dout : (K, T, B, H) gradient w.r.t. the outputs ``hs[:, 1:]``.
    dhT : (K, B, H) gradient w.r.t. the final state of each sequence.
    batch_sizes : (T,) int64
    relu : bool
    norms : (K, T, B) or (0, 0, 0) optional output: ||dL/dh_t||_2.

    Returns
    -------
    dx : (K, T, B, D) gradient w.r.t. the input x (zero past a sequence's end); (K, T, B,
        0) for ``wih`` (K, H, 0).
    dwih : (K, H, D)
    dbih : (K, H)
    dwhh : (K, H, H)
    dbhh : (K, H) (equal to dbih)
    dh0 : (K, B, H)
    """
    K, T1, B, H = hs.shape
    dxp = np.empty((K, T1 - 1, B, H), hs.dtype)  # dL/d(pre-activation), the gate gradient
    dh = dhT.copy()
    items, per_member, rows = loop_blocks(K, B, 1, H, T1 - 1)
    plan = product_plan()
    wih_l = loop_input_weights(wih, per_member)
    dx = np.empty((K, T1 - 1, B, wih_l.shape[2]), hs.dtype)
    whh_p, wih_p = step_weights(whh, rows, plan), step_weights(wih_l, rows, plan)
    run_items(_backward_items, items, hs, whh, whh_p, wih_l, wih_p, dout, dh, dxp, dx,
              batch_sizes, relu, norms, per_member, rows, plan)  # fmt: skip
    dwhh, dwih, db = matmul_tn(dxp, hs, xin)
    return input_grad(dxp, wih, dx), dwih, db, dwhh, db.copy(), dh


@njit(cache=True, nogil=True, fastmath=FASTMATH, error_model="numpy")
def _backward_items(hs, whh, whh_p, wih, wih_p, dout, dh, dxp, dx, batch_sizes, relu, norms,
                    per_member, rows, plan, first, step):  # fmt: skip
    """The work items ``range(first, K * per_member, step)`` of :func:`rnn_backward`: the
    time loop, writing ``dxp``, ``dx`` and ``norms`` and taking ``dh`` from dL/dh_T to
    dL/dh_0; ``whh_p``, ``wih_p``: :func:`step_weights` of ``whh`` and ``wih``."""
    # the arguments' views uncounted (the caller holds them; see _views)
    hs, whh, whh_p, wih, wih_p, dout, dh, dxp, dx, batch_sizes, norms = borrow(
        hs, whh, whh_p, wih, wih_p, dout, dh, dxp, dx, batch_sizes, norms
    )
    K, T1, B, H = hs.shape
    T = T1 - 1
    zero = hs.dtype.type(0)
    one = hs.dtype.type(1)
    want_norms = norms.shape[1] == T
    for item in range(first, K * per_member, step):
        m, lo, hi = span(item, per_member, rows, B)
        for t in range(T - 1, -1, -1):
            n = active_end(batch_sizes, t, lo, hi)
            clear(dxp, m, t, t + 1, n, hi)
            clear(dx, m, t, t + 1, n, hi)
            if n == lo:
                if want_norms:
                    norms[m, t, lo:hi] = np.nan
                continue
            for b in range(lo, n):
                hb, gb, db, ob = hs[m, t + 1, b], dxp[m, t, b], dh[m, b], dout[m, t, b]
                ss = zero
                for j in range(H):
                    g = db[j] + ob[j]  # total derivative dL/dh_t
                    ss += g * g
                    gb[j] = (
                        g * (one if hb[j] > zero else zero) if relu else g * (one - hb[j] * hb[j])
                    )
                if want_norms:
                    norms[m, t, b] = np.sqrt(ss)
            if want_norms:
                norms[m, t, n:hi] = np.nan
            # dL/dh_{t-1} through the recurrence (rows past their end carry dh unchanged),
            # and dL/dx_t
            g = dxp[m, t][lo:n]
            for p in range(2):  # one call site: LLVM inlines step_dot's code once
                w, wp, out = (whh[m], whh_p[m], dh[m]) if p == 0 else (wih[m], wih_p[m], dx[m, t])
                step_dot(g, w, wp, out[lo:n], plan)


@callee(fastmath=FASTMATH)
def rnn_step_jacobian(J, hs, whh, m, t, b, relu):
    """Write the step Jacobian dh_{t+1}/dh_t = diag(act'(a_t)) W_hh of member m's sequence b
    into J (H, H); ``whh`` is that member's W_hh (H, H).

    ``hs`` and ``t`` use the kernel's indexing: step t maps ``hs[m, t]`` to ``hs[m, t+1]``.
    """
    H = whh.shape[1]
    zero = hs.dtype.type(0)
    one = hs.dtype.type(1)
    for i in range(H):
        h = hs[m, t + 1, b, i]
        d = (one if h > zero else zero) if relu else one - h * h
        for j in range(H):
            J[i, j] = d * whh[i, j]
