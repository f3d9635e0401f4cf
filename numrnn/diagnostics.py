"""Gradient diagnostics: how gradients vanish or explode, step by step and layer by layer.

Background (d2l.ai, BPTT): for h_t = W_hh h_{t-1} + W_hx x_t, o_t = W_qh h_t,
``dL/dh_t = sum_i (W_hh^T)^(T-i) W_qh^T dL/do_(T+t-i)``: the gradient reaching step t is
carried by powers of W_hh^T, so it scales like its spectral radius to the power T - t
(2^50 explodes, 0.5^50 vanishes). With a nonlinearity the powers become products of
step Jacobians J_t = ds_t/ds_{t-1}, whose norms and Lyapunov exponents this module
measures (Glorot & Bengio 2010; Engelken, Wolf & Abbott 2023; Vogt et al. 2022).

Every function returns an ``xarray.Dataset`` (schema in :mod:`numrnn.results`); ``time``
is the real time index, also for the backward direction, and values past a sequence's
end are NaN.
"""

import contextlib
import warnings

import numpy as np

from . import _checks
from .kernels import jacobian as _jac
from .kernels._parallel import serial_blas
from .nn import ahead
from .nn.params import key
from .results import layer_coords, model_attrs


def _blas_for(items, S):
    """BLAS single-threaded while the kernels run several sequences on their own threads;
    for one sequence of a large state, BLAS keeps its threads for that sequence's S x S
    products (measured on 2 cores, the Lyapunov QR iteration: 1.2x faster at S = 1000, no
    faster and noisier at S = 200)."""
    return contextlib.nullcontext() if items == 1 and S >= 512 else serial_blas()


def _dataset(data_vars, model, coords, **attrs):
    """A Dataset; for an ensemble every variable gets a leading ``member`` dimension."""
    import xarray as xr

    if model.stacked:
        data_vars = {k: (("member",) + v[0], v[1], v[2]) for k, v in data_vars.items()}
        coords = {"member": np.arange(model.members), **coords}
    return xr.Dataset(data_vars, coords=coords, attrs=model_attrs(model, **attrs))


def gradient_norms(model, x, d_output, state=None, lengths=None, *, backend="cpu"):
    """Norms of the total derivative dL/dh_t for every layer, direction, sequence and step.

    ``L = sum(d_output * output)``; the derivative includes every path through later steps
    and layers. Computed inside the BPTT kernels, in the same pass as the gradients.

    Parameters
    ----------
    model : RNN, LSTM, GRU or Ensemble
    x : ndarray, shape (T, B, D)
        Inputs; integer token ids (T, B) for a model with an embedding (``vocab_size``).
    d_output : ndarray
        dL/d(output), shaped like the model's output (e.g. (T, B, dirs*H), or the head's).
    state, lengths
        As in :meth:`~numrnn.nn.Recurrent.forward`.
    backend : {"cpu", "cuda"}, default "cpu"
        Where the forward and backward passes run.

    Returns
    -------
    xarray.Dataset
        ``grad_norm`` (layer, direction, batch, time), and for the LSTM ``cell_grad_norm``
        (||dL/dc_t||); NaN past a sequence's end; an ensemble adds a leading ``member``.
        ``attrs``: the model's ``config`` and ``cell`` and ``loss``.

    Examples
    --------
    >>> import numpy as np, numrnn as nr
    >>> model = nr.RNN(3, 4, seed=0)
    >>> x = np.random.default_rng(0).standard_normal((6, 2, 3))
    >>> d_out = np.zeros((6, 2, 4)); d_out[-1] = 1          # a loss at the last step
    >>> ds = nr.diagnostics.gradient_norms(model, x, d_out)
    >>> ds.grad_norm.dims
    ('layer', 'direction', 'batch', 'time')
    >>> g = ds.grad_norm.isel(layer=0, direction=0, batch=0).values
    >>> bool(g[0] < g[-1])                                   # it shrinks going back in time
    True
    """
    res = model.forward(x, state, lengths, backend=backend)
    g = model.backward(res, d_output, norms=True, input_grad=False)
    T, B = res.tape.T, res.tape.B
    dims = ("layer", "direction", "batch", "time")
    desc = {
        "grad_norm": "2-norm of the total derivative dL/dh_t of the layer's hidden state",
        "cell_grad_norm": "2-norm of the total derivative dL/dc_t of the LSTM cell state",
    }
    data = {
        name: (dims, a, {"units": "1", "description": desc[name]}) for name, a in g.norms.items()
    }
    return _dataset(data, model, layer_coords(model, B, T), loss="sum(d_output * output)")


def _layer_runs(model, x, state, lengths, backend, kernels):
    """Forward once, then yield (layer, direction, jacobian kernel args, tape) per layer.

    ``kernels``: the keyword arguments of ``_jac.in_background`` for the kernels the caller
    runs next. Those not in the cache compile in a second process while the forward pass
    runs (and compiles, on a first use), and no second process compiles the backward
    kernels meanwhile (``nn.ahead.paused``: no backward pass follows).
    """
    pending = _jac.in_background(model.dtype.name, model.cell.spec.name == "gru", **kernels)
    with ahead.paused(), pending:
        res = model.forward(x, state, lengths, backend=backend)
    tp = res.tape
    for layer in range(model.num_layers):
        for d in range(model.num_directions):
            kind, hs, cs, gates, aux = model.cell.jacobian_args(tp.layer(layer, d).cache)
            whh = tp.weights[key("weight_hh", layer, d)]
            yield layer, d, (kind, hs, cs, gates, aux, whh, tp.packed.batch_sizes), tp


class _Progress:
    """A tqdm bar over the (sequence, step) pairs of every layer and direction, shown only
    when the work takes more than a second (long sequences, large states). It starts at the
    first step done: on a first use the kernel compiles for seconds before any step (the
    compile notice says so), and a bar standing at 0 meanwhile would look hung."""

    def __init__(self, desc, model):
        self.desc, self.model, self.bar, self.base = desc, model, None, 0

    def layer(self, tp):
        """The progress callback of one layer's kernel call."""
        per_layer = tp.K * int(tp.packed.lengths_or_full().sum())
        total = per_layer * self.model.num_layers * self.model.num_directions
        base = self.base
        self.base += per_layer

        def update(n):
            if self.bar is None:
                if base + n == 0:
                    return
                from tqdm.auto import tqdm

                self.bar = tqdm(total=total, desc=self.desc, unit="step", delay=1.0, leave=False)
            self.bar.update(base + n - self.bar.n)

        return update

    def close(self):
        if self.bar is not None:
            self.bar.close()


def jacobian_norms(model, x, state=None, lengths=None, ord=2, n_sv=0, *, backend="cpu"):  # noqa: A002
    """Norms of ds_T/ds_t within each layer's own recurrence, its input sequence held fixed.

    s is the layer's state (h; for the LSTM the concatenation (h, c)) and T the last step
    in that direction's order, so at the last step the value is 1 (ord=2). The products of
    step Jacobians are built backwards in compiled code, one S x S product per step.

    Parameters
    ----------
    model : RNN, LSTM, GRU or Ensemble
    x : ndarray, shape (T, B, D)
        Inputs; integer token ids (T, B) for a model with an embedding (``vocab_size``).
    state, lengths
        As in :meth:`~numrnn.nn.Recurrent.forward`.
    ord : {2, "fro"}, default 2
        The spectral or the Frobenius norm.
    n_sv : int >= 0, default 0
        Also return the ``n_sv`` largest singular values as ``jacobian_sv``; at most the
        state size (H, or 2H for the LSTM).
    backend : {"cpu", "cuda"}, default "cpu"
        Where the forward pass runs; the products of step Jacobians are built on the CPU
        from the saved trajectory.

    Returns
    -------
    xarray.Dataset
        ``jacobian_norm`` (layer, direction, batch, time) and with ``n_sv`` also
        ``jacobian_sv`` (layer, direction, batch, time, sv); NaN past a sequence's end.

    Examples
    --------
    >>> import numpy as np, numrnn as nr
    >>> model = nr.RNN(3, 8, seed=0, init={"weight_hh": ("spectral", {"radius": 0.5})})
    >>> x = np.random.default_rng(0).standard_normal((10, 4, 3))
    >>> jac = nr.diagnostics.jacobian_norms(model, x).jacobian_norm
    >>> float(jac[0, 0, 0, -1])                         # ds_T/ds_T = I
    1.0
    >>> bool((jac[0, 0, :, 0] < 0.5 ** 5).all())         # vanishes like the radius^lag
    True
    """
    _checks.check_choice("ord", ord, (2, "fro"))
    n_sv = _checks.check_int("n_sv", n_sv, 0)
    S = model.cell.spec.state_size(model.hidden_size)
    if n_sv > S:
        raise ValueError(f"n_sv must be at most the state size {S}, got {n_sv}")
    norms = sv = None
    progress = _Progress("Jacobian norms", model)
    # the kernel without singular values may compile while the forward pass runs
    ahead = {"norms": n_sv == 0, "lyapunov": False}
    for layer, d, args, tp in _layer_runs(model, x, state, lengths, backend, ahead):
        with _blas_for(tp.K * tp.B, S):
            n, s = _jac.jacobian_norms(*args, ord == "fro", int(n_sv), progress.layer(tp))
        if norms is None:
            K, L, dirs, B, T = tp.K, model.num_layers, model.num_directions, tp.B, tp.T
            norms = np.empty((K, L, dirs, B, T), model.dtype)
            sv = np.empty((K, L, dirs, B, T, s.shape[3]), model.dtype)
        norms[:, layer, d] = tp.packed.to_caller(n, d)
        sv[:, layer, d] = tp.packed.to_caller(s, d)
    progress.close()
    norms, sv = model.unstacked(norms), model.unstacked(sv)
    dims = ("layer", "direction", "batch", "time")
    what = "spectral" if ord == 2 else "Frobenius"
    data = {
        "jacobian_norm": (dims, norms, {
            "units": "1",
            "description": f"{what} norm of ds_T/ds_t, T the last step in the direction's order",
        }),
    }  # fmt: skip
    if n_sv:
        data["jacobian_sv"] = (dims + ("sv",), sv, {
            "units": "1", "description": "largest singular values of ds_T/ds_t, descending",
        })  # fmt: skip
    coords = layer_coords(model, tp.B, tp.T)
    if n_sv:
        coords["sv"] = np.arange(sv.shape[-1])
    return _dataset(data, model, coords, ord=str(ord))


def lyapunov_spectrum(
    model,
    x,
    state=None,
    lengths=None,
    n_exponents=None,
    warmup=0,
    *,
    reorthonormalize=None,
    backend="cpu",
):
    """Lyapunov exponents of each layer's dynamics along the trajectory driven by ``x``.

    QR (Benettin) method: tangent vectors are propagated by the step Jacobians and
    re-orthonormalised (a QR) every few steps; the exponents are the logs of the diagonal
    of R summed over the steps after ``warmup`` and divided by their number, in nats per
    step, sorted descending. With the full
    spectrum their sum equals the mean log|det J_t|. A negative largest exponent means
    perturbations (and gradients) shrink along the trajectory, a positive one that they grow.

    Parameters
    ----------
    model : RNN, LSTM, GRU or Ensemble
    x : ndarray, shape (T, B, D)
        Inputs; integer token ids (T, B) for a model with an embedding (``vocab_size``).
    state, lengths
        As in :meth:`~numrnn.nn.Recurrent.forward`.
    n_exponents : int or None
        How many of the largest exponents; None: the full spectrum (H, or 2H for the
        LSTM's (h, c)).
    warmup : int >= 0, default 0
        Steps whose growth rates are not averaged (the transient); less than T. A sequence
        of at most ``warmup`` steps has no step to average: its exponents are NaN, with a
        RuntimeWarning naming it.
    reorthonormalize : int >= 1 or None
        Steps between two QRs: 1 is the classical every-step method; k > 1 multiplies k
        Jacobians before each QR (exactly the same exponents in exact arithmetic, as the
        diagonal of a product of triangular matrices is the product of their diagonals;
        the products are rescaled every step). None (default) chooses k after each QR
        from the spread of the exponents seen, so that the weakest direction keeps half
        the dtype's digits over a stretch (k at most 16): within 1e-7 of the every-step
        exponents in float64 (5e-9 seen on the whole spectrum of tanh RNNs whose exponents
        spread over 8 nats per step, tested; 3e-8 at H = 1000), the largest ones to 4e-15
        relative at H = 200, and faster where the QR dominates (the full spectrum: 1.5x
        at H = 200). In float32 half the digits is about 3.5e-4 relative per QR.
    backend : {"cpu", "cuda"}, default "cpu"
        Where the forward pass runs; the QR iteration runs on the CPU.

    Returns
    -------
    xarray.Dataset
        ``lyapunov`` (layer, direction, batch, exponent) in nats per step, descending.

    Examples
    --------
    >>> import numpy as np, numrnn as nr
    >>> model = nr.RNN(3, 8, seed=0, init={"weight_hh": ("spectral", {"radius": 3.0})})
    >>> x = np.random.default_rng(0).standard_normal((10, 2, 3))
    >>> lam = nr.diagnostics.lyapunov_spectrum(model, x, n_exponents=2, warmup=2).lyapunov
    >>> lam.dims, lam.shape
    (('layer', 'direction', 'batch', 'exponent'), (1, 1, 2, 2))
    >>> bool((lam[..., 0] >= lam[..., 1]).all())
    True
    """
    S = model.cell.spec.state_size(model.hidden_size)
    n = S if n_exponents is None else _checks.check_positive_int("n_exponents", n_exponents)
    if n > S:
        raise ValueError(f"n_exponents must be at most the state size {S}, got {n}")
    warmup = _checks.check_int("warmup", warmup, 0)
    interval = _checks.check_int("reorthonormalize", reorthonormalize, 1, none_ok=True) or 0
    # a fixed random orthonormal start (QR of a seeded Gaussian): reproducible, and in
    # general position with respect to every invariant subspace
    q0 = np.linalg.qr(np.random.default_rng(0).standard_normal((S, n)))[0].astype(model.dtype)
    out = None
    progress = _Progress("Lyapunov spectrum", model)
    ahead = {"norms": False, "lyapunov": True}
    for layer, d, args, tp in _layer_runs(model, x, state, lengths, backend, ahead):
        if warmup >= tp.T:
            raise ValueError(f"warmup must be less than the number of steps {tp.T}, got {warmup}")
        if tp.packed.lengths is not None and tp.packed.lengths[-1] <= warmup and layer == d == 0:
            lens = tp.packed.unsort(tp.packed.lengths, 0)
            short = np.flatnonzero(lens <= warmup).tolist()
            warnings.warn(
                f"sequences {short} have no more than warmup={warmup} steps: their "
                "Lyapunov exponents are NaN (no step to average)",
                RuntimeWarning,
                stacklevel=2,
            )
        with _blas_for(tp.K * tp.B, S):
            lam = _jac.lyapunov_spectrum(*args, q0, int(warmup), interval, progress.layer(tp))
        if out is None:
            L, dirs = model.num_layers, model.num_directions
            out = np.empty((tp.K, L, dirs, tp.B, n), model.dtype)
        out[:, layer, d] = tp.packed.unsort(lam, 1)
    progress.close()
    out = model.unstacked(out)
    coords = layer_coords(model, tp.B)
    coords["exponent"] = np.arange(n)
    data = {"lyapunov": (("layer", "direction", "batch", "exponent"), out, {
        "units": "nats per step",
        "description": "Lyapunov exponents by the QR (Benettin) method, descending",
    })}  # fmt: skip
    return _dataset(data, model, coords, warmup=int(warmup))


def weight_powers(model, kmax):
    """Spectral norms of the powers (W_hh^T)^k, k = 1..kmax, and the spectral radius.

    These are the factors of the d2l BPTT formula dL/dh_t = sum_i (W_hh^T)^(T-i) W_qh^T
    dL/do_(T+t-i); ||(W^T)^k||_2 grows or decays like rho(W)^k for large k. For gated
    cells each gate's recurrent block (H, H) is taken separately (dimension ``gate``).

    Parameters
    ----------
    model : RNN, LSTM, GRU or Ensemble
    kmax : int > 0
        The largest power.

    Returns
    -------
    xarray.Dataset
        ``power_norm`` (layer, direction, [gate,] k) and ``spectral_radius`` (layer,
        direction[, gate]), in float64; ``gate`` only for gated cells.

    Examples
    --------
    >>> import numrnn as nr
    >>> model = nr.RNN(3, 8, seed=0, init={"weight_hh": ("spectral", {"radius": 0.5})})
    >>> ds = nr.diagnostics.weight_powers(model, kmax=40)
    >>> ds.spectral_radius.round(6).values                  # (layer, direction)
    array([[0.5]])
    >>> bool(ds.power_norm.sel(k=40) < 1e-9)                  # like 0.5 ** 40
    True
    >>> nr.diagnostics.weight_powers(nr.GRU(3, 8, seed=0), 2).power_norm.dims
    ('layer', 'direction', 'gate', 'k')
    """
    kmax = _checks.check_positive_int("kmax", kmax)
    if model.stacked:
        import xarray as xr

        parts = [weight_powers(m, kmax) for m in model.unstack()]
        ds = xr.concat(parts, dim="member", combine_attrs="override")
        return ds.assign_coords(member=np.arange(model.members)).assign_attrs(model_attrs(model))
    H, L, dirs = model.hidden_size, model.num_layers, model.num_directions
    gates = model.cell.spec.gates
    G = len(gates)
    power = np.empty((L, dirs, G, kmax), np.float64)
    radius = np.empty((L, dirs, G), np.float64)
    with np.errstate(over="ignore", invalid="ignore"):
        for layer in range(L):
            for d in range(dirs):
                name = key("weight_hh", layer, d)
                w = _checks.check_array(f"model.params[{name!r}]", model.params[name],
                                        (G * H, H), model.dtype).astype(np.float64)  # fmt: skip
                for g in range(G):
                    wt = w[g * H : (g + 1) * H].T
                    radius[layer, d, g] = np.abs(np.linalg.eigvals(wt)).max()
                    p = np.eye(H)
                    for k in range(kmax):
                        p = p @ wt
                        power[layer, d, g, k] = (
                            np.linalg.norm(p, 2) if np.isfinite(p).all() else np.inf
                        )
    coords = layer_coords(model)
    coords["k"] = np.arange(1, kmax + 1)
    pdims, rdims = ("layer", "direction", "gate", "k"), ("layer", "direction", "gate")
    if G == 1:  # a cell without gates: no gate dimension
        power, radius = power[:, :, 0], radius[:, :, 0]
        pdims, rdims = ("layer", "direction", "k"), ("layer", "direction")
    else:
        coords["gate"] = np.array(gates)
    data = {
        "power_norm": (pdims, power, {
            "units": "1", "description": "spectral norm of (W_hh^T)^k (per gate block)",
        }),
        "spectral_radius": (rdims, radius, {
            "units": "1", "description": "largest |eigenvalue| of W_hh (per gate block)",
        }),
    }  # fmt: skip
    return _dataset(data, model, coords)
