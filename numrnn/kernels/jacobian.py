"""Products of step Jacobians along a trajectory: Jacobian norms and Lyapunov spectra.

Both drivers walk a layer's saved trajectory (the forward cache; array contract in
``rnn.py``) and ask the cell for the explicit step Jacobian J_t = ds_{t+1}/ds_t of one
sequence (``*_step_jacobian``, beside each cell's forward and BPTT). ``kind`` selects it:

    0 tanh RNN, 1 ReLU RNN, 2 LSTM (s = (h, c)), 3 GRU reset after, 4 GRU reset before

The cache is passed uniformly as ``(hs, cs, gates, aux)`` with the leading member axis
of every kernel; what a cell lacks is a (0, 0, 0, 0) array. The (member, sequence) pairs
are spread over threads (``_parallel.run_items``). Each driver has two compiled kernels,
one for the GRUs and one for the RNNs and the LSTM (:data:`KERNELS`), so that a first use
compiles only its family's step Jacobians.
"""

import math

import numpy as np
from numba import njit, typeof, types

from .._options import get_option
from . import _compiling
from ._compiling import callee
from ._config import CHECK_EVERY, CLUSTERED, FASTMATH, LANCZOS_STEPS, product_plan
from ._parallel import run_items
from .gru import gru_step_jacobian
from .lapack import apply_q, form_q, geqrf, register, workspace_size
from .linalg import copy2d, dot_rows
from .lstm import lstm_step_jacobian
from .panels import empty_panels
from .rnn import rnn_step_jacobian

KINDS = {"rnn_tanh": 0, "rnn_relu": 1, "lstm": 2, "gru_after": 3, "gru_before": 4}


def is_gru(kind):
    """Whether ``kind`` is a GRU's: the key of its family's kernels in :data:`KERNELS`."""
    return kind >= KINDS["gru_after"]


@njit(inline="always")
def _step_jacobian(gru, kind, J, hs, cs, gates, aux, whh, m, t, b, plan):
    """The step Jacobian of ``kind`` into J. Inlined into the kernels of
    :func:`_family_kernels`, where ``gru`` is a constant: Numba drops the other family's
    branch before compiling. ``plan``: the products' (``_config.product_plan``)."""
    if gru:
        gru_step_jacobian(J, hs, gates, aux, whh[m], m, t, b, kind == 3, plan)
    elif kind <= 1:
        rnn_step_jacobian(J, hs, whh[m], m, t, b, kind == 1)
    else:
        lstm_step_jacobian(J, cs, gates, aux, whh[m], m, t, b)


@callee()
def _length(batch_sizes, b):
    """Number of steps sequence b is active (the batch is sorted by length)."""
    n = 0
    for t in range(batch_sizes.shape[0]):
        if batch_sizes[t] > b:
            n += 1
    return n


@callee(fastmath=FASTMATH)
def _abs_max(a):
    """max |a| of a C-contiguous array without a temporary; NaN if any entry is NaN.

    Branch-free so that it vectorises: NaN, which no comparison picks, is caught by the
    sum of all |a| instead."""
    big = 0.0
    total = 0.0
    flat = a.ravel()
    for i in range(flat.size):
        v = abs(flat[i])
        big = v if v > big else big
        total += v
    return total if np.isnan(total) else big


@callee()
def _divide(a, c):
    """``a /= c`` in place, and the sum of the squares of the result, for a C-contiguous
    array (a loop: the array expression compiled a ufunc loop, and ``np.sum(a * a)`` a
    temporary and a reduction, seconds of first use between them). Exact division, no
    fast-math: a reciprocal would leave the largest entry an ulp off 1."""
    flat = a.ravel()
    total = 0.0
    for i in range(flat.size):
        v = flat[i] / c
        flat[i] = v
        total += v * v
    return total


# _sigma_max's outcomes
CONVERGED, UNFINISHED, GO_DENSE = 0, 1, 2


@callee()
def _converged(theta, theta2, r):
    """Whether the top Ritz value ``theta`` of P P^T, with residual ``r`` and the second
    Ritz value at most ``theta2``, is the largest eigenvalue to rounding.

    Either r <= 1e-13 theta: some eigenvalue lies within r of theta (Weyl), and Lanczos
    from a start with a component along every direction finds the largest first. Or
    r <= 1e-7 theta and r^2 / (theta - theta2) <= 1e-16 theta: the Kato-Temple bound
    r^2 / (theta - lambda_2) on the error, with lambda_2 estimated by theta2 (an estimate:
    theta2 <= lambda_2), capped at 1e-7 by the first bound whatever lambda_2 is. The
    second rule saves a quarter of the steps and half the dense fallbacks where the top
    singular values are close (measured: an orthogonal W_hh, T = 200, H = 128).
    """
    return r <= 1e-13 * theta or (r <= 1e-7 * theta and r * r <= 1e-16 * theta * (theta - theta2))


@callee(fastmath=FASTMATH)
def _sigma_max(P, u, basis):
    """Largest singular value of P by Lanczos on P P^T started from ``u``.

    Full reorthogonalisation; ``u`` is overwritten with the top Ritz vector (the next
    start). Returns ``(sigma, outcome)``: CONVERGED (see :func:`_converged`), UNFINISHED
    (not converged in the steps the basis holds; another run from the Ritz vector may
    converge) or GO_DENSE (the top two eigenvalues are too close for Lanczos to converge
    soon, see ``CLUSTERED``). Loops, not array expressions: no temporaries in a routine
    called once per sequence and step.
    """
    S = P.shape[0]
    m = basis.shape[0] - 1
    alpha = np.zeros(m)
    beta = np.zeros(m)
    y = np.zeros(S)
    z = np.zeros(S)
    nu = 0.0
    for i in range(S):
        u[i] += 1e-3 * np.sin(1.0 + i)  # a fixed nudge: a component along every direction
        nu += u[i] * u[i]
    nu = np.sqrt(nu)
    for i in range(S):
        basis[0, i] = u[i] / nu
    k, theta, theta2, s = m, 0.0, 0.0, np.zeros(1)
    for j in range(m):
        v = basis[j]
        y[:] = 0.0
        for i in range(S):  # y = P^T v, row by row (contiguous)
            vi = v[i]
            for a in range(S):
                y[a] += P[i, a] * vi
        for i in range(S):  # z = P y
            acc = 0.0
            for a in range(S):
                acc += P[i, a] * y[a]
            z[i] = acc
        acc = 0.0
        for i in range(S):
            acc += z[i] * v[i]
        alpha[j] = acc
        # the three-term recurrence, then full reorthogonalisation against the basis: a
        # second pass only where the first removed more than half of what was left
        # (||z||^2 halved: "twice is enough", Kahan and Parlett)
        nz = 0.0
        for i in range(S):
            z[i] -= acc * v[i] + (beta[j - 1] * basis[j - 1, i] if j > 0 else 0.0)
            nz += z[i] * z[i]
        for _ in range(2):
            before = nz
            for q in range(j + 1):
                d = 0.0
                for i in range(S):
                    d += z[i] * basis[q, i]
                for i in range(S):
                    z[i] -= d * basis[q, i]
            nz = 0.0
            for i in range(S):
                nz += z[i] * z[i]
            if nz > 0.5 * before:
                break
        beta[j] = np.sqrt(nz)
        k = j + 1
        # an invariant subspace (Ritz values exact), the last step, or every CHECK_EVERY-th
        if beta[j] <= 1e-15 * abs(alpha[0]) or k == m or k % CHECK_EVERY == 0:
            theta, theta2, s = _ritz(alpha, beta, k, theta)
            if _converged(theta, theta2, beta[j] * abs(s[k - 1])) or k == m or beta[j] == 0.0:
                break
            if k >= 2 * CHECK_EVERY and theta - theta2 < CLUSTERED * theta:
                return np.sqrt(max(theta, 0.0)), GO_DENSE
        for i in range(S):
            basis[j + 1, i] = z[i] / beta[j]
    u[:] = 0.0
    for j in range(k):
        for i in range(S):
            u[i] += s[j] * basis[j, i]
    done = _converged(theta, theta2, beta[k - 1] * abs(s[k - 1]))
    return np.sqrt(max(theta, 0.0)), CONVERGED if done else UNFINISHED


@callee()
def _ritz(alpha, beta, k, guess):
    """Largest eigenvalue, an upper bound of the second largest, and the largest's unit
    eigenvector of the k x k Lanczos tridiagonal matrix (diagonal ``alpha[:k]``,
    off-diagonal ``beta[:k-1]``): ``(theta, theta2, s)``. ``guess`` > 0: a value near the
    largest eigenvalue that speeds up the bisection (any value gives the same result);
    0 for none.

    The eigenvalue by bisection on Sturm counts, to a few ulps of the matrix's norm; the
    second one by 16 bisection steps more (to 2^-16 of the Gershgorin interval); the
    vector by two steps of inverse iteration with ``theta I - T``, which is positive
    semi-definite for theta >= the largest eigenvalue, so its LDL^T needs no pivoting.
    O(k) per bisection step: a dense ``eigh`` cost up to 40 us at k = 24 and was most
    of a Lanczos run's time.
    """
    # in units of the matrix's scale: no squares over- or underflow below. Loops, not
    # array expressions: those compile a shape-mismatch error path with string
    # formatting, seconds of compile time for every caller up the chain
    scale = 1e-300
    for j in range(k):
        scale = max(scale, abs(alpha[j]), abs(beta[j]) if j + 1 < k else 0.0)
    a = np.empty(k)
    b = np.zeros(k)  # b[j] couples j-1 and j
    for j in range(k):
        a[j] = alpha[j] / scale
        if j > 0:
            b[j] = beta[j - 1] / scale
    lo, hi = np.inf, -np.inf  # Gershgorin bounds
    for j in range(k):
        r = abs(b[j]) + (abs(b[j + 1]) if j + 1 < k else 0.0)
        lo = min(lo, a[j] - r)
        hi = max(hi, a[j] + r)
    bottom = lo
    g = guess / scale
    if 0.0 < g < hi and lo < g and _sturm(a, b, g) < k:
        # an eigenvalue at or above the guess (the last check's value, which the top Ritz
        # value only grows from): bracket it from there, widening the upper end by 2^10
        # until all eigenvalues lie below it; the bisection then starts from a narrow
        # bracket (about 20 instead of 55 Sturm sweeps when the guess is close)
        lo = g
        width = 2.0**-40 * abs(g) + 1e-300
        while g + width < hi:
            if _sturm(a, b, g + width) == k:
                hi = g + width
                break
            width *= 2.0**10
    while hi - lo > 2e-16 * max(abs(lo), abs(hi)):
        x = 0.5 * (lo + hi)
        if x <= lo or x >= hi:
            break
        if _sturm(a, b, x) == k:
            hi = x
        else:
            lo = x
    lo2, hi2 = bottom, hi
    for _ in range(16):
        x = 0.5 * (lo2 + hi2)
        if _sturm(a, b, x) >= k - 1:
            hi2 = x
        else:
            lo2 = x
    # inverse iteration: solve (hi I - T) s = s twice; pivots d_j >= 0 (a zero one, at an
    # exact eigenvalue, is nudged to 1e-18: s then points along the eigenvector, as wanted)
    d = np.empty(k)
    s = np.ones(k)
    for _ in range(2):
        d[0] = max(hi - a[0], 1e-18)
        for j in range(1, k):
            d[j] = max(hi - a[j] - b[j] * b[j] / d[j - 1], 1e-18)
        for j in range(1, k):  # forward: L y = s, L unit lower with -b/d below
            s[j] += b[j] / d[j - 1] * s[j - 1]
        s[k - 1] /= d[k - 1]
        for j in range(k - 2, -1, -1):  # backward: D L^T s = y
            s[j] = (s[j] + b[j + 1] * s[j + 1]) / d[j]
        nrm = 0.0
        for j in range(k):
            nrm += s[j] * s[j]
        nrm = np.sqrt(nrm)
        if not 0.0 < nrm < np.inf:  # cannot happen short of a NaN in T; keep a unit vector
            for j in range(k):
                s[j] = 0.0
            s[k - 1] = 1.0
            break
        for j in range(k):
            s[j] /= nrm
    return hi * scale, hi2 * scale, s


@callee()
def _sturm(a, b, x):
    """Number of eigenvalues below x of the tridiagonal matrix (a, b): the negative pivots
    of T - x I (Sturm's theorem)."""
    below = 0
    q = 1.0
    for j in range(a.shape[0]):
        q = a[j] - x - b[j] * b[j] / q
        if q == 0.0:
            q = -1e-300
        if q < 0.0:
            below += 1
    return below


def _progress_poll(done, progress):
    """A ``run_items`` poll reporting the steps done so far (``done`` holds one count per
    item, written by the item's kernel) to ``progress``, or None."""
    return None if progress is None else (lambda: progress(int(done.sum())))


def jacobian_norms(kind, hs, cs, gates, aux, whh, batch_sizes, fro, n_sv, progress=None):
    """Norms of ds_last/ds_t for every sequence and step, built backwards in compiled code.

    P_last = I and P_{t-1} = P_t J_t: one S x S matrix product per step (S = H, or 2H for
    the LSTM's state (h, c)).

    Parameters
    ----------
    kind : int, see the module docstring.
    hs, cs, gates, aux : the layer's forward cache.
    whh : (K, G*H, H) W_hh.
    batch_sizes : (T,) int64
    fro : bool; Frobenius norm instead of the spectral norm.
    n_sv : int; also return the n_sv largest singular values.
    progress : None or a callable, called now and then with the number of (sequence,
        step) pairs done so far.

    Returns
    -------
    norms : (K, B, T), NaN past a sequence's end; inf or NaN from where the trajectory
        itself is not finite. Kept to full float64 range: the product is carried as a
        scale factor (in logs) times a matrix of largest entry 1.
    sv : (K, B, T, n_sv) singular values, descending (by an SVD, only when n_sv > 0).
    """
    T = batch_sizes.shape[0]
    K, B = hs.shape[0], hs.shape[2]
    norms = np.full((K, B, T), np.nan, hs.dtype)
    sv = np.full((K, B, T, n_sv), np.nan, hs.dtype)
    # without singular values the kernel gets None: Numba then prunes the SVD branch and
    # does not compile it (a second or more of the time to first result)
    done = np.zeros(K * B, np.int64)
    plan = product_plan()
    args = (kind, hs, cs, gates, aux, whh, batch_sizes, fro, norms, sv if n_sv else None, done,
            plan)  # fmt: skip
    run_items(KERNELS[is_gru(kind)][0], K * B, *args, poll=_progress_poll(done, progress))
    return norms, sv


def lyapunov_spectrum(kind, hs, cs, gates, aux, whh, batch_sizes, q0, warmup, interval=1,
                      progress=None):  # fmt: skip
    """Lyapunov exponents by the QR (Benettin) method along each sequence's trajectory.

    Q_0 = q0, an (S, n_exp) matrix with orthonormal columns in general position (a random
    one: coordinate vectors could lie in an invariant subspace and miss the largest
    exponents); Z = J_t ... J_(t-k+1) Q_(t-k) = Q_t R_t; the exponents are the sums of
    log|diag R_t| over the steps after ``warmup`` divided by their number, in nats per step.
    With the full spectrum their sum is the mean of log|det J_t|.

    ``interval`` k: the QR every k steps (1: every step, the classical method; the product
    of k Jacobians is rescaled every step, its log scale added back, so that it neither
    overflows nor underflows); 0: adaptive, k chosen after each QR so that the spread of the
    exponents over k steps stays below ``log(1 / eps) / 2`` (k = 1 where one step's spread
    exceeds it), with :data:`HEADROOM`, at most :data:`MAX_INTERVAL`; a stretch whose QR
    shows that it spread further (a step far more contracting than the last stretch's) is
    done again a step at a time, from a copy of where it began.
    The QR of a product whose columns span a ratio c of scales gives the weakest direction's
    diagonal entry to a relative eps * c (Householder QR is column-wise backward stable), so
    it keeps half the digits: about 1.5e-8 per QR in float64 (the spread varies from one
    stretch to the next), exponents within 1e-7 of the every-step ones (3e-8 seen at
    S = 1000, 5e-9 at S = 32); in float32 about 3.5e-4 per QR. (Keeping two thirds would
    take a QR every step wherever the exponents spread over more than 6 nats per step, as
    in a chaotic tanh network: 7 at g = 2; half, above 9.) Exact arithmetic gives the same
    exponents for any k, as diag(R_2 R_1) = diag(R_2) diag(R_1); a QR always falls after
    step ``warmup - 1``, so the averaged steps are exactly those after the warm-up.

    Q_t is not formed: the step after a QR multiplies its Jacobian by Q's Householder
    reflectors (``lapack.apply_q``), the other steps by the product so far
    (``linalg.dot_rows``: numrnn's panels where the CPU has AVX-512, else one BLAS call;
    at S = 200 the panels made the whole 1.09x faster in the chaotic network of
    ``benchmarks/bench_lyapunov.py``, where every second step is one, and 1.25x where the
    QR is rarer); with few exponents (3 n_exp < S) the thin Q is formed instead
    (``lapack.form_q``), which then costs less than the reflectors on all of J. For the
    full spectrum at S = 200 in float64 that was 1.46-1.65 s instead of 1.68-1.87 s for the
    adaptive interval of ``benchmarks/bench_lyapunov.py`` (T = 2000; every step 2.39-2.50
    against 2.69-3.30 s), and 2.8-2.9 against 3.6-4.4 s at S = 1000 (T = 60), before the
    stretches done again (about a tenth there).

    Returns
    -------
    (K, B, n_exp) exponents sorted descending; NaN for a sequence with no step after warmup.
    (The kernel leaves them in the order of R's diagonal; they are sorted outside it.)
    ``progress`` as for :func:`jacobian_norms`.
    """
    register()  # the kernel calls LAPACK by name (lapack.py)
    K, B = hs.shape[0], hs.shape[2]
    out = np.full((K, B, q0.shape[1]), np.nan, hs.dtype)
    done = np.zeros(K * B, np.int64)
    digits = -math.log(np.finfo(hs.dtype).eps) / 2.0
    run_items(KERNELS[is_gru(kind)][1], K * B, kind, hs, cs, gates, aux, whh, batch_sizes, q0,
              warmup, interval, digits, out, done, product_plan(),
              poll=_progress_poll(done, progress))  # fmt: skip
    # sorted here, not in the kernel: np.sort there compiles a quicksort (2-3 s of first use)
    return -np.sort(-out, axis=2)


#: the longest stretch of steps between two QRs that the adaptive interval takes
MAX_INTERVAL = 16
#: How much further than the last stretch the adaptive interval expects the next one to
#: spread. A stretch that spread too far is done again a step at a time, which costs about
#: three times what a stretch of two steps saves (its product, its QR and the reflectors'
#: product thrown away; a QR saved), so the intervals leave this much room. For the chaotic
#: tanh networks of ``benchmarks/bench_lyapunov.py`` (g = 2, exponents spread over 6.9 and
#: 8.7 nats per step at N = 200 and 1000 against float64's 18.4 kept): without it 75 of
#: 1121 QRs at N = 200 (T = 2000) and 11 of 56 at N = 1000 (T = 60) were of stretches done
#: again, and at N = 1000 the whole took longer than the QR every step (4.1-5.0 against
#: 3.4-4.0 s); with 1.15, 16 of 1104 and none of 59 (3.3-3.5 s; N = 200: 1.41-1.67 against
#: 1.49-1.77 s). Exponents then keep slightly more than half the digits.
HEADROOM = 1.15


def _family_kernels(gru):
    """The Jacobian-norm and the Lyapunov kernel of one family of cells: the GRUs (``gru``
    True, kinds 3 and 4) or the RNNs and the LSTM. ``gru`` is a closure constant, so Numba
    compiles only that family's step Jacobians (the GRU's, with its matrix product, added
    about 4 s to every RNN's and LSTM's first use). Each family's kernels are named apart
    (``norms_of_items_gru``, ...) before they are compiled: Numba names a kernel's cache
    files by its qualified name, and two families sharing one index could, written by two
    processes at once, have one family's key point at the other's code.
    """
    family = "_gru" if gru else "_rnn_lstm"

    def named(kernel):
        kernel.__name__ += family
        kernel.__qualname__ += family
        return njit(cache=True, nogil=True)(kernel)

    @named
    def norms_of_items(kind, hs, cs, gates, aux, whh, batch_sizes, fro, norms, sv, done, plan,
                        first, step):  # fmt: skip
        """The Jacobian norms of the sequences ``range(first, K * B, step)`` (item m * B + b:
        member m's sequence b); see :func:`jacobian_norms`. ``done[item]`` counts its steps."""
        B = hs.shape[2]
        S = whh.shape[2] * (2 if kind == 2 else 1)
        Q = np.empty((S, S), hs.dtype)
        J = np.empty((S, S), hs.dtype)
        work = np.empty((S, S), hs.dtype)
        Jp = empty_panels(0 if plan is None else S, S, J)  # J's panels, for dot_rows
        # Lanczos workspace
        basis = np.empty((min(S, LANCZOS_STEPS) + 1, S), np.float64)
        u = np.empty(S)
        for item in range(first, hs.shape[0] * B, step):
            m, b = item // B, item % B
            # P = exp(log_scale) * Q with max|Q| = 1, so products spanning far more than the
            # float range (1e-300 .. 1e300 after a few hundred steps) keep their digits
            for i in range(S):
                for j in range(S):
                    Q[i, j] = 1.0 if i == j else 0.0
                u[i] = 1.0 + 0.01 * np.cos(i)  # Lanczos start: no special direction
            log_scale = 0.0
            for t in range(_length(batch_sizes, b) - 1, -1, -1):
                big = _abs_max(Q)
                if not np.isfinite(big) or big == 0.0:
                    # zero stays zero (e.g. ReLU units all off); an inf/NaN trajectory is
                    # reported
                    norms[m, b, t] = big
                    if sv is not None:
                        sv[m, b, t, :] = big
                    continue
                # max |Q| = 1 again; big = 1 leaves Q as it is
                fro_norm = np.sqrt(_divide(Q, big))
                log_scale += np.log(big)
                if sv is not None:
                    s = np.linalg.svd(Q)[1]
                    for k in range(min(sv.shape[3], S)):
                        sv[m, b, t, k] = np.exp(np.log(s[k]) + log_scale)
                    q = fro_norm if fro else s[0]
                elif fro:
                    q = fro_norm
                else:
                    # u, the top left singular vector, lives in the fixed space of s_T and
                    # changes slowly from step to step: each step starts from the last one's
                    Q64 = np.asarray(Q, np.float64)  # no copy in float64
                    q, outcome = _sigma_max(Q64, u, basis)
                    if outcome == UNFINISHED:  # once more, from the Ritz vector
                        q, outcome = _sigma_max(Q64, u, basis)
                    if outcome != CONVERGED:  # the largest eigenvalue of Q^T Q, dense
                        q = np.sqrt(np.linalg.eigvalsh(np.dot(Q64.T, Q64))[S - 1])
                norms[m, b, t] = np.exp(np.log(q) + log_scale)
                done[item] += 1
                if t > 0:
                    _step_jacobian(gru, kind, J, hs, cs, gates, aux, whh, m, t, b, plan)
                    dot_rows(Q, J, work, plan, Jp)
                    Q, work = work, Q

    @named
    def lyapunov_of_items(kind, hs, cs, gates, aux, whh, batch_sizes, q0, warmup, interval,
                           digits, out, done, plan, first, step):  # fmt: skip
        """The Lyapunov exponents of the sequences ``range(first, K * B, step)`` (item
        m * B + b: member m's sequence b); see :func:`lyapunov_spectrum`."""
        B = hs.shape[2]
        S, n_exp = q0.shape
        J = np.empty((S, S), hs.dtype)
        Jp = empty_panels(0 if plan is None else S, S, J)  # J^T's panels, for dot_rows
        # the product Z (S, n_exp) is held as its transpose, as LAPACK reads it (lapack.py)
        zt = np.empty((n_exp, S), hs.dtype)
        wt = np.empty((n_exp, S), hs.dtype)
        tau = np.empty(n_exp, hs.dtype)
        work = np.empty(workspace_size(S, n_exp), hs.dtype)
        sums = np.empty(n_exp, np.float64)
        # where the current stretch began (zt, tau and factored then), to redo it
        zs = np.empty((n_exp, S), hs.dtype)
        taus = np.empty(n_exp, hs.dtype)
        for item in range(first, hs.shape[0] * B, step):
            m, b = item // B, item % B
            L = _length(batch_sizes, b)
            if L <= warmup:
                done[item] = L
                continue
            copy2d(zt, q0.T, False)
            factored = False  # zt holds the last QR (R and Q's reflectors), not a product
            sums[:] = 0.0
            k = 1 if interval == 0 else interval  # steps of the current stretch between QRs
            run, scale = 0, 0.0  # steps since the last QR; the log of the rescaling since
            t0, saved = 0, False  # the stretch's first step; whether zs holds a QR
            copy2d(zs, zt, False)
            t = 0
            while t < L:
                _step_jacobian(gru, kind, J, hs, cs, gates, aux, whh, m, t, b, plan)
                info = 0
                if factored and 3 * n_exp >= S:
                    # J Q by Q's reflectors: J's first n_exp columns, transposed
                    info = apply_q(zt, tau, J, work)
                    copy2d(wt, J[:, :n_exp].T, False)
                else:  # Z^T J^T, or with few exponents Q^T J^T, the thin Q formed first
                    if factored:
                        info = form_q(zt, tau, work)
                    dot_rows(zt, J.T, wt, plan, Jp)
                zt, wt = wt, zt
                factored = False
                big = _abs_max(zt)  # no temporary per step
                if not (np.isfinite(big) and big > 0.0) or info != 0:
                    # an inf/NaN trajectory has no exponents (nor would a LAPACK call that
                    # refused its arguments, which the shapes here never make it do)
                    sums[:] = np.nan
                    break
                run += 1
                done[item] += 1
                if run < k and t != warmup - 1 and t != L - 1:
                    # carry the product on, rescaled; the scale is added back below
                    _divide(zt, big)
                    scale += math.log(big)
                    t += 1
                    continue
                if geqrf(zt, tau, work) != 0:  # R's diagonal is zt's
                    sums[:] = np.nan
                    break
                factored = True
                lo, hi = math.inf, -math.inf
                for i in range(n_exp):
                    g = math.log(abs(zt[i, i]))
                    lo, hi = min(lo, g), max(hi, g)
                if interval == 0 and run > 1 and hi - lo > digits:
                    # the stretch spread over more than the digits kept (a step far more
                    # contracting than the last stretch's): its weakest directions lost
                    # their digits; redo it a step at a time, from where it began
                    copy2d(zt, zs, False)
                    for i in range(n_exp):
                        tau[i] = taus[i]
                    factored = saved
                    done[item] -= run
                    t, k, run, scale = t0, 1, 0, 0.0
                    continue
                if t >= warmup:
                    for i in range(n_exp):
                        sums[i] += math.log(abs(zt[i, i])) + scale
                if interval == 0 and n_exp > 1:  # the next stretch: spread * k <= digits
                    spread = (hi - lo) / run * HEADROOM
                    k = MAX_INTERVAL
                    if spread * MAX_INTERVAL > digits:
                        k = max(1, int(digits / spread))
                elif interval == 0:
                    k = MAX_INTERVAL
                run, scale = 0, 0.0
                t += 1
                if interval == 0 and k > 1:  # the next stretch begins here: keep its start
                    # (a stretch of one step is never done again: nothing to keep)
                    copy2d(zs, zt, False)
                    for i in range(n_exp):
                        taus[i] = tau[i]
                    t0, saved = t, True
            for k in range(n_exp):
                out[m, b, k] = sums[k] / (L - warmup)

    return norms_of_items, lyapunov_of_items


#: (Jacobian-norm kernel, Lyapunov kernel) of each family, by :func:`is_gru`
KERNELS = {gru: _family_kernels(gru) for gru in (False, True)}


# -- Compiling ahead: numrnn warmup, and the diagnostics while their forward pass runs --


def example(dtype, gru=False):
    """The trajectory arguments of :func:`jacobian_norms` and :func:`lyapunov_spectrum`
    (``kind`` to ``batch_sizes``) of the types a model of ``dtype`` passes, for a GRU or for
    an RNN or LSTM (the cell is the run-time ``kind``; every cache array is a C-contiguous
    4-D array): a one-step, one-sequence trajectory of zeros.
    ``tests/unit/test_precompile.py`` checks the types against real calls."""
    states, gates = np.zeros((1, 2, 1, 1), dtype), np.zeros((1, 1, 1, 4), dtype)
    aux = np.zeros((1, 1, 1, 1), dtype)
    whh = np.zeros((1, 4, 1), dtype)  # (K, G * H, H), room for every cell's gates
    kind = KINDS["gru_after" if gru else "rnn_tanh"]
    return kind, states, states, gates, aux, whh, np.ones(1, np.int64)


def exercise(dtype, gru=False, norms=True, lyapunov=True):
    """Compile (or load) one family's Jacobian-norm kernel (without singular values) and
    Lyapunov kernel for ``dtype`` in this process, on :func:`example`'s trajectory."""
    args = example(dtype, gru)
    if norms:
        jacobian_norms(*args, False, 0)
    if lyapunov:
        lyapunov_spectrum(*args, np.ones((1, 1), dtype), 0, 0)


_ASKED = set()  # (dtype, gru, 0 norms / 1 Lyapunov) asked of in_background in this process


def in_background(dtype, gru=False, norms=True, lyapunov=False):
    """Compile the kernels :func:`exercise` would in a second process, those of them that
    are not in the cache already, unless only one core is free.

    That takes 10-20 s on one core, longer than a model's forward kernels: run the
    forward pass inside the ``with`` block of the ``Background`` returned
    (``_compiling.Background``), and the kernels load from the cache after it.
    """
    # once asked for in a process, a kernel is in the cache or in this process's memory
    norms = norms and (dtype, gru, 0) not in _ASKED
    lyapunov = lyapunov and (dtype, gru, 1) not in _ASKED
    _ASKED.update((dtype, gru, i) for i, wanted in enumerate((norms, lyapunov)) if wanted)
    if not (norms or lyapunov):
        return _compiling.Background()
    hs = typeof(example(dtype)[1])
    # the kernels' second argument is the trajectory, the norms kernel's tenth the singular
    # values (None without them)
    norms = norms and not any(sig[1] == hs and sig[9] == types.none
                              for sig in _compiling.cached_signatures(KERNELS[gru][0]))  # fmt: skip
    lyapunov = lyapunov and not any(
        sig[1] == hs for sig in _compiling.cached_signatures(KERNELS[gru][1])
    )
    if not (norms or lyapunov) or _compiling.cores() < 2:
        return _compiling.Background()
    pending = _compiling.in_background(__name__, f"exercise({dtype!r}, {gru}, {norms}, {lyapunov})")
    if pending.proc is not None and get_option("compile_notice"):
        _compiling.tell("jacobian", dtype, " in a second process")
    return pending
