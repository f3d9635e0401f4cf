"""Recurrent models: stacking, directions, variable lengths, dropout and an output head.

Everything here is composed once for all cells: a cell (``numrnn/cells.py``) only maps
one direction of one layer's input projection to its states. This module

* sorts the batch by length (longest first) so that each step's active sequences are a
  prefix, as in PyTorch's packed sequences, and undoes the sort on the way out;
* runs the backward direction on each sequence reversed within its own length;
* computes every layer's input projection with one matrix product before the time loop
  and its input-side gradients with one product after it;
* applies dropout between layers and before the head only (Pham et al. 2014), never on
  the recurrent connection h_{t-1} -> h_t.

Shapes: x (T, B, D) time-major; output (T, B, dirs*H), forward direction first;
state (layers*dirs, B, H), a tuple (h, c) for the LSTM.
"""

import copy
from dataclasses import dataclass, field

import numpy as np

from . import _checks
from . import params as _params
from .cells import GRUCell, LSTMCell, RNNCell, kernels
from .kernels import linalg as _linalg
from .kernels._parallel import one_thread, serial


@dataclass
class Forward:
    """Result of :meth:`Recurrent.forward`.

    Attributes
    ----------
    output : (T, B, dirs*H) layer outputs, or the head's output (T, B, O) / (B, O).
    state : (layers*dirs, B, H) final states, a tuple (h, c) for the LSTM.
    """

    output: np.ndarray
    state: object
    tape: dict = field(repr=False, default_factory=dict)


@dataclass
class Gradients:
    """Result of :meth:`Recurrent.backward`.

    Attributes
    ----------
    params : dict of gradients, same keys and shapes as ``model.params``.
    input : (T, B, D) gradient w.r.t. x; None when not asked for (``input_grad=False``).
    state : gradient w.r.t. the initial state, same layout as ``state``.
    norms : dict of (layers, dirs, B, T) arrays ``grad_norm`` (||dL/dh_t||) and, for the
        LSTM, ``cell_grad_norm`` (||dL/dc_t||) when asked for; NaN past a sequence's end.
    """

    params: dict
    input: np.ndarray
    state: object
    norms: dict = field(default_factory=dict)


def _reverse_index(lengths, T):
    """(T, B) time index reversing each sequence within its own length (an involution)."""
    t = np.arange(T)[:, None]
    return np.where(t < lengths[None, :], lengths[None, :] - 1 - t, t)


def _flip(a, rev):
    """Reverse ``a`` (K, T, B, ...) in time, each sequence within its length when ``rev``
    (from :func:`_reverse_index`) is given."""
    if rev is None:
        return np.ascontiguousarray(a[:, ::-1])
    return np.ascontiguousarray(a[:, rev, np.arange(a.shape[2])])


class Recurrent:
    """Common machinery of :class:`RNN`, :class:`LSTM` and :class:`GRU`.

    Parameters
    ----------
    input_size, hidden_size, num_layers : positive int
    bidirectional : bool
    dtype : "float64" (default) or "float32"
    seed : int, numpy Generator or None; the source of the initial weights.
    init : initializer spec (see :func:`numrnn.init.init_params`); None is PyTorch's default.
    output_size : int or None; adds a dense head ``weight_out`` (O, dirs*H), ``bias_out`` (O,).
    readout : "all" (many-to-many, head output (T, B, O)) or "last" (many-to-one, (B, O),
        from the final forward state and the backward direction's state at t = 0).
    dropout : float in [0, 1); applied in training mode to the outputs of each layer that
        feed the next layer and to the head's input, never to the recurrent path.
    """

    cell_type = None

    def __init__(
        self,
        input_size,
        hidden_size,
        num_layers=1,
        bidirectional=False,
        dtype="float64",
        seed=None,
        *,
        init=None,
        output_size=None,
        readout="all",
        dropout=0.0,
    ):
        self.input_size = _checks.check_positive_int("input_size", input_size)
        self.hidden_size = _checks.check_positive_int("hidden_size", hidden_size)
        self.num_layers = _checks.check_positive_int("num_layers", num_layers)
        if not isinstance(bidirectional, (bool, np.bool_)):
            raise TypeError(f"bidirectional must be a bool, got {bidirectional!r}")
        self.bidirectional = bool(bidirectional)
        self.num_directions = 2 if bidirectional else 1
        self.dtype = _checks.check_dtype(dtype)
        self.output_size = (
            None if output_size is None else _checks.check_positive_int("output_size", output_size)
        )
        self.readout = _checks.check_choice("readout", readout, ("all", "last"))
        if not (isinstance(dropout, (int, float)) and 0.0 <= dropout < 1.0):
            raise ValueError(f"dropout must be a number in [0, 1), got {dropout!r}")
        self.dropout = float(dropout)
        self.init = init
        self.seed = seed if seed is None or isinstance(seed, (int, np.integer)) else repr(seed)
        self.params = self._init_params(init, seed)

    # -- construction -------------------------------------------------------------------

    def _shapes(self):
        shapes = _params.shapes(
            self.cell.n_gates,
            self.input_size,
            self.hidden_size,
            self.num_layers,
            self.num_directions,
        )
        if self.output_size is not None:
            shapes["weight_out"] = (self.output_size, self.num_directions * self.hidden_size)
            shapes["bias_out"] = (self.output_size,)
        return shapes

    def _init_params(self, init, seed, **kwargs):
        from .init import init_params

        return init_params(
            self._shapes(),
            self.cell.n_gates,
            self.hidden_size,
            init=init,
            rng=seed,
            dtype=self.dtype,
            **kwargs,
        )

    @property
    def config(self):
        """The constructor's arguments as a JSON-serialisable dict (for results' attrs)."""
        cfg = {
            "cell": self.cell_name,
            "input_size": self.input_size,
            "hidden_size": self.hidden_size,
            "num_layers": self.num_layers,
            "bidirectional": self.bidirectional,
            "dtype": self.dtype.name,
            "output_size": self.output_size,
            "readout": self.readout,
            "dropout": self.dropout,
            "init": _init_spec(self.init),
            "seed": None
            if self.seed is None
            else (int(self.seed) if isinstance(self.seed, (int, np.integer)) else self.seed),
        }
        return cfg

    @property
    def cell_name(self):
        return self.cell_type

    def to_torch(self):
        """The equivalent ``torch.nn`` module with the same weights and dtype."""
        return _params.to_torch(self)

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self.config.items() if k != "cell")
        return f"{type(self).__name__}({args})"

    @property
    def n_states(self):
        return len(self.cell.state_names)

    # -- the member axis ------------------------------------------------------------------
    # Internally every array has a leading member axis K (kernels run K networks at once);
    # a single model is K = 1 and these four methods add and remove that axis. Ensemble
    # overrides them to keep it.

    members = 1

    def _stack_input(self, x):
        """Check x (T, B, D); return it as (1, T, B, D)."""
        return _checks.check_array("x", x, ("T", "B", self.input_size), self.dtype)[None]

    def _stack_state(self, name, state, B):
        """Check a state argument; return a tuple of (1, layers*dirs, B, H) arrays."""
        shape = (self.num_layers * self.num_directions, B, self.hidden_size)
        return tuple(s[None] for s in self._check_state(name, state, shape))

    def _stack_weights(self):
        """The parameters, checked, as C-contiguous (1, ...) arrays."""
        return {k: v[None] for k, v in self._check_params(self.params, ()).items()}

    def _unstack(self, a):
        return a[0]

    def _check_state(self, name, state, shape):
        """Validate a state argument: a tuple of arrays of ``shape`` (zeros for None)."""
        if state is None:
            return tuple(np.zeros(shape, self.dtype) for _ in range(self.n_states))
        if self.n_states == 1:
            parts, names = (state,), (name,)
        else:
            if not isinstance(state, (tuple, list)) or len(state) != 2:
                raise TypeError(
                    f"{name} must be a tuple (h, c) for an LSTM, got {type(state).__name__}"
                )
            parts, names = tuple(state), (f"{name}[0] (h)", f"{name}[1] (c)")
        return tuple(
            _checks.check_array(n, s, shape, self.dtype) for n, s in zip(names, parts, strict=True)
        )

    def _check_params(self, params, lead):
        """Check a parameter dict: the model's keys, shapes (after ``lead``), dtype, finite."""
        shapes = self._shapes()
        if set(params) != set(shapes):
            missing = sorted(set(shapes) - set(params))
            extra = sorted(set(params) - set(shapes))
            raise ValueError(
                f"params must have keys {list(shapes)}; missing {missing}, unexpected {extra}"
            )
        return {
            k: _checks.check_array(f"params[{k!r}]", params[k], lead + shapes[k], self.dtype)
            for k in shapes
        }

    def _pack_state(self, states):
        states = [self._unstack(s) for s in states]
        return states[0] if self.n_states == 1 else tuple(states)

    # -- forward --------------------------------------------------------------------------

    @serial  # the kernels and products parallelise themselves; BLAS runs single-threaded
    def forward(self, x, state=None, lengths=None, *, train=False, rng=None, backend="cpu"):
        """Run the model over a batch of sequences.

        Parameters
        ----------
        x : (T, B, D) inputs, the model's dtype.
        state : initial state (layers*dirs, B, H), a tuple (h, c) for the LSTM; None for zeros.
        lengths : (B,) ints in 1..T or None; steps past a sequence's length leave its state
            unchanged and give zero output, as with PyTorch's packed sequences.
        train : bool; dropout is active only in training mode.
        rng : numpy Generator or seed for the dropout masks (training mode only); for an
            :class:`Ensemble` also a list of one per member, each member then drawing exactly
            the masks it would draw as a single model.
        backend : "cpu" (compiled Numba kernels) or "cuda" (``numba.cuda`` kernels); the
            backward pass uses the same backend.

        Returns
        -------
        Forward, with ``output`` and ``state``; pass it to :meth:`backward`.
        """
        k = kernels(backend)
        x = self._stack_input(x)
        _, T, B, _ = x.shape
        states0 = self._stack_state("state", state, B)
        w = self._stack_weights()
        K = w[_params.key("weight_hh", 0, 0)].shape[0]
        if K * B == 1:
            one_thread()
        if lengths is not None:
            lengths = _checks.check_lengths(lengths, T, B)
        drop = self.dropout if train else 0.0
        if drop:
            rng = _member_rngs(rng, K)

        # sort by length, longest first: each step's active sequences are then a prefix
        if lengths is None or np.all(lengths == T):
            order, lens, rev, batch_sizes = None, None, None, np.full(T, B, np.int64)
        else:
            order = np.argsort(-lengths, kind="stable")
            lens = lengths[order]
            x = x[:, :, order]
            states0 = tuple(s[:, :, order] for s in states0)
            rev = _reverse_index(lens, T)
            batch_sizes = (lens[None, :] > np.arange(T)[:, None]).sum(axis=1).astype(np.int64)

        H, L, dirs = self.hidden_size, self.num_layers, self.num_directions
        finals = tuple(np.empty((K, L * dirs, B, H), self.dtype) for _ in range(self.n_states))
        layers, masks = [], []
        inp = x
        for layer in range(L):
            outs = []
            for d in range(dirs):
                key = _params.key
                # contiguous: the kernels take each step's rows, BPTT flattens it
                xin = np.ascontiguousarray(inp) if d == 0 else _flip(inp, rev)
                traj, cache = self.cell.forward(
                    k,
                    xin,
                    w[key("weight_ih", layer, d)],
                    w[key("bias_ih", layer, d)],
                    w[key("weight_hh", layer, d)],
                    w[key("bias_hh", layer, d)],
                    tuple(np.ascontiguousarray(s[:, layer * dirs + d]) for s in states0),
                    batch_sizes,
                )
                for s, final in zip(traj, finals, strict=True):
                    final[:, layer * dirs + d] = (
                        s[:, T] if lens is None else s[:, lens, np.arange(B)]
                    )
                out = traj[0][:, 1:]
                outs.append(out if d == 0 else _flip(out, rev))
                layers.append({"xin": xin, "cache": cache})
            inp = outs[0] if dirs == 1 else np.concatenate(outs, axis=3)
            if drop and layer < L - 1:
                inp, mask = _dropout(inp, drop, rng)
                masks.append(mask)

        output, feats, head_mask = inp, None, None
        if self.output_size is not None:
            feats = self._readout_features(inp, finals[0])
            if drop:
                feats, head_mask = _dropout(feats, drop, rng)
            output = _matmul_t(feats, w["weight_out"], w["bias_out"])
            if self.readout == "all" and lens is not None:
                output *= _live(lens, T)[None, :, :, None]
        tape = {
            "T": T,
            "B": B,
            "K": K,
            "kernels": k,
            "order": order,
            "lens": lens,
            "rev": rev,
            "batch_sizes": batch_sizes,
            "layers": layers,
            "masks": masks,
            "weights": w,
            "feats": feats,
            "head_mask": head_mask,
        }
        batch_axis = output.ndim - 2 if self.output_size and self.readout == "last" else 2
        return Forward(
            output=self._unstack(_unsort(output, order, batch_axis)),
            state=self._pack_state([_unsort(f, order, 2) for f in finals]),
            tape=tape,
        )

    def _readout_features(self, top, h_final):
        """Input of the head: every step's top output (K, T, B, F), or (K, B, F) for "last":
        the final forward state beside the backward direction's state at t = 0."""
        if self.readout == "all":
            return top
        L, dirs = self.num_layers, self.num_directions
        return np.concatenate([h_final[:, (L - 1) * dirs + d] for d in range(dirs)], axis=2)

    # -- backward -------------------------------------------------------------------------

    @serial
    def backward(self, res, d_output, d_state=None, *, norms=False, input_grad=True):
        """Backpropagation through time for ``L = sum(d_output * output) + sum(d_state * state)``.

        Parameters
        ----------
        res : Forward, from :meth:`forward`.
        d_output : array of ``res.output``'s shape.
        d_state : like ``res.state`` or None (zero).
        norms : bool; also return ||dL/dh_t|| (and ||dL/dc_t||) for every layer, direction,
            sequence and step, computed inside the BPTT kernels.
        input_grad : bool; False skips the gradient w.r.t. x (``Gradients.input`` is then
            None), a product over the whole trajectory that training does not need.

        Returns
        -------
        Gradients
        """
        if not isinstance(res, Forward):
            raise TypeError(
                f"res must be the Forward result of model.forward, got {type(res).__name__}"
            )
        tp = res.tape
        T, B, K, order, lens, rev = (tp[n] for n in ("T", "B", "K", "order", "lens", "rev"))
        if K * B == 1:
            one_thread()
        w = tp["weights"]
        d_output = _checks.check_array("d_output", d_output, res.output.shape, self.dtype)
        d_output = d_output if self.members != 1 else d_output[None]
        dstates = self._stack_state("d_state", d_state, B)
        head_last = self.output_size is not None and self.readout == "last"
        if order is not None:
            d_output = d_output[:, order] if head_last else d_output[:, :, order]
            dstates = tuple(s[:, :, order] for s in dstates)
        H, L, dirs = self.hidden_size, self.num_layers, self.num_directions
        # own copies (the head adds into them), one per member (np.broadcast_to is slow)
        dfinals = tuple(s.copy() if len(s) == K else np.repeat(s, K, axis=0) for s in dstates)
        grads = {}

        # the head: its gradient enters the top layer's output (or final states)
        if self.output_size is not None:
            if self.readout == "all" and lens is not None:
                d_output = d_output * _live(lens, T)[None, :, :, None]
            feats = tp["feats"]
            dy = d_output.reshape(K, -1, self.output_size)
            grads["weight_out"], _, grads["bias_out"] = _matmul_tn(dy, feats)
            dfeat = _linalg.matmul(np.ascontiguousarray(dy), w["weight_out"], _no_bias(dy)).reshape(
                feats.shape
            )
            if tp["head_mask"] is not None:
                dfeat *= tp["head_mask"]
            if self.readout == "all":
                dtop = dfeat
            else:
                for d in range(dirs):
                    dfinals[0][:, (L - 1) * dirs + d] += dfeat[:, :, d * H : (d + 1) * H]
                dtop = np.zeros((K, T, B, dirs * H), self.dtype)
        else:
            dtop = d_output

        shape = (K, L, dirs, B, T)
        wanted = self.cell.state_names if norms else ()
        norm_arrays = {n: np.full(shape, np.nan, self.dtype) for n in wanted}
        no_norm = np.zeros((0, 0, 0), self.dtype)
        masks = list(tp["masks"])
        dinp = dtop
        dstate0 = tuple(np.zeros((K,) + s.shape[1:], self.dtype) for s in dstates)
        for layer in range(L - 1, -1, -1):
            if masks and layer < L - 1:
                dinp = dinp * masks.pop()
            dnext = None
            for d in range(dirs):
                key = _params.key
                idx = layer * dirs + d
                entry = tp["layers"][idx]
                dout = dinp[..., d * H : (d + 1) * H]
                dout = np.ascontiguousarray(dout) if d == 0 else _flip(dout, rev)
                kn = tuple(np.empty((K, T, B), self.dtype) if norms else no_norm for _ in dstates)
                dxp, wgrads, ds0 = self.cell.backward(
                    tp["kernels"],
                    entry["cache"],
                    w[key("weight_hh", layer, d)],
                    entry["xin"],
                    dout,
                    tuple(np.ascontiguousarray(s[:, idx]) for s in dfinals),
                    tp["batch_sizes"],
                    kn,
                )
                for s0, g in zip(dstate0, ds0, strict=True):
                    s0[:, idx] = g
                if norms:
                    for name, a in zip(self.cell.state_names, kn, strict=True):
                        # back to real time (the backward direction ran reversed)
                        a = a if d == 0 else _flip(a, rev)
                        norm_arrays[name][:, layer, d] = a.transpose(0, 2, 1)
                names = ("weight_ih", "bias_ih", "weight_hh", "bias_hh")
                for name, g in zip(names, wgrads, strict=True):
                    grads[key(name, layer, d)] = g
                if layer == 0 and not input_grad:
                    continue
                flat = dxp.reshape(K, T * B, -1)
                dxin = _linalg.matmul(flat, w[key("weight_ih", layer, d)], _no_bias(flat)).reshape(
                    K, T, B, -1
                )
                if d == 1:
                    dxin = _flip(dxin, rev)
                dnext = dxin if dnext is None else dnext + dxin
            dinp = dnext

        names = {"h": "grad_norm", "c": "cell_grad_norm"}
        return Gradients(
            params={k: self._unstack(grads[k]) for k in self._shapes()},
            input=None if dinp is None else self._unstack(_unsort(dinp, order, 2)),
            state=self._pack_state([_unsort(s, order, 2) for s in dstate0]),
            norms={names[n]: self._unstack(_unsort(a, order, 3)) for n, a in norm_arrays.items()}
            if norms
            else {},
        )


def _no_bias(a):
    """The (0, 0) bias that tells ``linalg.matmul`` to add none."""
    return np.zeros((0, 0), a.dtype)


def _matmul_t(a, w, bias):
    """``a @ w.T + bias`` per member: a (K or 1, ..., F), w (K, O, F), bias (K, O)
    -> (K, ..., O)."""
    flat = np.ascontiguousarray(a).reshape(a.shape[0], -1, a.shape[-1])
    out = _linalg.matmul(flat, np.ascontiguousarray(w.transpose(0, 2, 1)), bias)
    return out.reshape((w.shape[0],) + a.shape[1:-1] + (-1,))


def _matmul_tn(a, b):
    """``(a.T @ b, empty, a.sum)`` per member over all leading axes: a (K, ..., G), b (K or
    1, ..., D) -> (K, G, D), (K, G, 0), (K, G); see ``linalg.matmul_tn``."""
    a4 = np.ascontiguousarray(a).reshape(a.shape[0], 1, -1, a.shape[-1])
    b4 = np.ascontiguousarray(b).reshape(b.shape[0], 1, -1, b.shape[-1])
    return _linalg.matmul_tn(a4, b4, np.zeros((0, 0, 0, 0), a.dtype))


def _live(lens, T):
    """(T, B) mask of the steps inside each sequence."""
    return np.arange(T)[:, None] < lens[None, :]


def _init_spec(init):
    """An ``init`` argument as JSON-serialisable data (initializers by their ``spec``)."""
    if init is None or isinstance(init, (str, int, float)):
        return init
    if isinstance(init, dict):
        return {k: _init_spec(v) for k, v in init.items()}
    if isinstance(init, (tuple, list)):
        return [_init_spec(v) for v in init]
    spec = getattr(init, "spec", None)
    return _init_spec(spec) if spec is not None else repr(init)


def _member_rngs(rng, K):
    """One Generator for all members, or (from a list) one per member."""
    if not isinstance(rng, (list, tuple)):
        return _checks.as_rng(rng)
    if len(rng) != K:
        raise ValueError(f"rng must be one Generator or a list of {K} (one per member), "
                         f"got a list of {len(rng)}")  # fmt: skip
    return [_checks.as_rng(r, f"rng[{k}]") for k, r in enumerate(rng)]


def _dropout(a, p, rng):
    """Inverted dropout of a (K, ...): ``(a * mask, mask)``, mask entries 0 or 1/(1-p).

    ``rng`` is one Generator, or a list of K whose k-th draws member k's mask.
    """
    if isinstance(rng, list):
        u = np.stack([r.random(a.shape[1:]) for r in rng])
    else:
        u = rng.random(a.shape)
    mask = (u >= p).astype(a.dtype) / a.dtype.type(1 - p)
    return a * mask, mask


def _unsort(a, order, axis):
    """Undo ``a.take(order, axis)`` (nothing to undo when ``order`` is None)."""
    if order is None:
        return a
    out = np.empty_like(a)
    idx = [slice(None)] * a.ndim
    idx[axis] = order
    out[tuple(idx)] = a
    return out


class RNN(Recurrent):
    """Elman RNN, ``h_t = act(W_ih x_t + b_ih + W_hh h_{t-1} + b_hh)``.

    Parameters
    ----------
    nonlinearity : "tanh" (default) or "relu" (with ``init="identity"``: the IRNN of
        Le, Jaitly & Hinton 2015).
    Others as in :class:`Recurrent`.
    """

    cell_type = "rnn"

    def __init__(
        self,
        input_size,
        hidden_size,
        num_layers=1,
        bidirectional=False,
        dtype="float64",
        seed=None,
        *,
        nonlinearity="tanh",
        **kwargs,
    ):
        self.nonlinearity = _checks.check_choice("nonlinearity", nonlinearity, ("tanh", "relu"))
        self.cell = RNNCell(nonlinearity)
        super().__init__(input_size, hidden_size, num_layers, bidirectional, dtype, seed, **kwargs)

    @property
    def cell_name(self):
        return f"rnn_{self.nonlinearity}"


class LSTM(Recurrent):
    """LSTM (Hochreiter & Schmidhuber 1997), PyTorch's gate order i, f, g, o; state (h, c).

    Parameters
    ----------
    forget_bias : float or None; sets the forget gate's effective bias (the sum of the f
        blocks of ``bias_ih`` and ``bias_hh``) exactly, e.g. 1.0 (Gers et al. 2000).
    Others as in :class:`Recurrent`.
    """

    cell_type = "lstm"

    def __init__(
        self,
        input_size,
        hidden_size,
        num_layers=1,
        bidirectional=False,
        dtype="float64",
        seed=None,
        *,
        forget_bias=None,
        **kwargs,
    ):
        self.cell = LSTMCell()
        self.forget_bias = forget_bias
        super().__init__(input_size, hidden_size, num_layers, bidirectional, dtype, seed, **kwargs)

    def _init_params(self, init, seed):
        return super()._init_params(init, seed, forget_bias=self.forget_bias)

    @property
    def config(self):
        return {**super().config, "forget_bias": self.forget_bias}


class GRU(Recurrent):
    """GRU (Cho et al. 2014), PyTorch's gate order r, z, n.

    Parameters
    ----------
    reset_after : bool; True (default) is PyTorch's and cuDNN's form
        ``n = tanh(W_in x + b_in + r * (W_hn h + b_hn))``; False the original
        ``n = tanh(W_in x + b_in + W_hn (r * h) + b_hn)``. Same parameter names.
    Others as in :class:`Recurrent`.
    """

    cell_type = "gru"

    def __init__(
        self,
        input_size,
        hidden_size,
        num_layers=1,
        bidirectional=False,
        dtype="float64",
        seed=None,
        *,
        reset_after=True,
        **kwargs,
    ):
        if not isinstance(reset_after, (bool, np.bool_)):
            raise TypeError(f"reset_after must be a bool, got {reset_after!r}")
        self.reset_after = bool(reset_after)
        self.cell = GRUCell(reset_after)
        super().__init__(input_size, hidden_size, num_layers, bidirectional, dtype, seed, **kwargs)

    @property
    def config(self):
        return {**super().config, "reset_after": self.reset_after}


# what may differ between an ensemble's members: how their weights were made
_PER_MEMBER = ("init", "seed", "forget_bias")


class Ensemble(Recurrent):
    """K independent networks of the same shape, run together in one compiled call per layer.

    Built from models of one class and configuration that differ only in their weights
    (initializers, seeds, forget bias). The API is the model's, with a leading member axis:
    ``params[k]`` is (K, ...) stacked; ``forward`` takes x (T, B, D) shared by all members
    or (K, T, B, D), and returns ``output`` (K, T, B, ...) and ``state`` (K, layers*dirs, B, H);
    ``backward`` takes ``d_output`` (K, ...) and returns stacked gradients; diagnostics gain
    a ``member`` dimension. The kernels run (member, block of sequences) items in parallel.

    Parameters
    ----------
    models : sequence of RNN, LSTM or GRU with equal configurations.
    """

    def __init__(self, models):
        models = list(models)
        if not models or not all(isinstance(m, Recurrent) for m in models):
            raise TypeError("models must be a non-empty sequence of numrnn RNN, LSTM or GRU models")
        first = models[0]
        if isinstance(first, Ensemble):
            raise TypeError("models must be single networks, got an Ensemble")
        shape_keys = [k for k in first.config if k not in _PER_MEMBER]
        for i, m in enumerate(models):
            if type(m) is not type(first) or any(
                m.config[k] != first.config[k] for k in shape_keys
            ):
                raise ValueError(
                    f"models must share class and configuration; models[{i}] has "
                    f"{type(m).__name__} {m.config}, "
                    f"models[0] {type(first).__name__} {first.config}"
                )
        self.__dict__.update({k: v for k, v in vars(first).items() if k != "params"})
        # the members without their weights: what unstack() rebuilds each model from
        self._shells = [copy.copy(m) for m in models]
        for shell in self._shells:
            del shell.params
        self._template = self._shells[0]
        self.members = len(models)
        self.cell_type = first.cell_type
        self.params = {k: np.stack([m.params[k] for m in models]) for k in first.params}

    @property
    def cell_name(self):
        return self._template.cell_name

    @property
    def config(self):
        configs = [m.config for m in self._shells]
        per_member = {k: [c.get(k) for c in configs] for k in _PER_MEMBER}
        return {**self._template.config, **per_member, "members": self.members}

    def __repr__(self):
        return f"Ensemble({self.members} x {self._template!r})"

    def unstack(self):
        """The members as separate models, with copies of their current weights."""
        out = []
        for k, shell in enumerate(self._shells):
            m = copy.copy(shell)
            m.params = {name: v[k].copy() for name, v in self.params.items()}
            out.append(m)
        return out

    def to_torch(self):
        raise TypeError("an Ensemble has no torch equivalent; convert its members (unstack())")

    def _stack_input(self, x):
        x = np.asarray(x)
        lead = (self.members,) if x.ndim == 4 else ()
        shape = lead + ("T", "B", self.input_size)
        x = _checks.check_array("x", x, shape if x.ndim == 4 else shape[-3:], self.dtype)
        return x if x.ndim == 4 else x[None]

    def _stack_state(self, name, state, B):
        shape = (self.members, self.num_layers * self.num_directions, B, self.hidden_size)
        return self._check_state(name, state, shape)

    def _stack_weights(self):
        return self._check_params(self.params, (self.members,))

    def _unstack(self, a):
        return a


def ensemble(models):
    """Run K models of the same shape as one :class:`Ensemble` (see there)."""
    return Ensemble(models)
