"""Layers and directions of a recurrent network, composed once for every cell.

A cell (:mod:`numrnn.nn.cells`) only maps one direction of one layer's input to its
states. :class:`Recurrent` stacks them:

* the batch is packed (:class:`~numrnn.nn.packing.PackedBatch`): sorted by length so
  that each step's active sequences are a prefix, the backward direction run on each
  sequence reversed within its own length, everything unsorted on the way out;
* each layer's input projection is made inside the kernels, and its input-side
  gradients with one product after the backward time loop;
* dropout between layers and the dense head come from :mod:`numrnn.nn.head`, the token
  embedding (``vocab_size``) from :mod:`numrnn.nn.embedding`;
* every array has a leading member axis K (kernels run K networks at once): a single
  model is K = 1, an :class:`~numrnn.nn.models.Ensemble` keeps the axis.

Shapes: x (T, B, D) time-major, or token ids (T, B) with an embedding; output
(T, B, dirs*H), forward direction first; state (layers*dirs, B, H), a tuple (h, c) for
the LSTM.
"""

import numpy as np

from .. import _checks
from .._options import get_option
from ..kernels._parallel import one_thread, serial
from . import ahead
from . import embedding as _emb
from . import head as _head
from .cells import MODELS, kernels
from .init import init_params, spec_of
from .packing import PackedBatch
from .params import key
from .params import shapes as layer_shapes
from .tape import Forward, Gradients, LayerTape, Tape

# the order in which cells take the weights and return their gradients
_CELL_ORDER = ("weight_ih", "bias_ih", "weight_hh", "bias_hh")


class Recurrent:
    """Common machinery of :class:`~numrnn.RNN`, :class:`~numrnn.LSTM` and :class:`~numrnn.GRU`.

    Not built directly: the model classes name a cell and pass the arguments below on.

    Parameters
    ----------
    input_size : int
        ``D``, the number of input features (with ``vocab_size``: the embedding's size).
    hidden_size : int
        ``H``, the number of hidden units of each layer and direction.
    num_layers : int, default 1
        Stacked layers; layer ``k > 0`` reads the output of layer ``k - 1``.
    bidirectional : bool, default False
        Give every layer a backward direction; the output is then ``(T, B, 2H)``, forward
        first.
    dtype : {"float64", "float32"}, default "float64"
        The dtype of the parameters, and of every input and result.
    seed : int, numpy.random.Generator or None
        The source of the initial weights; None draws fresh entropy.
    init : initializer spec, dict or None
        How the weights are drawn (see :func:`numrnn.nn.init.init_params`); None is
        PyTorch's default, U(-1/sqrt(H), 1/sqrt(H)) for every weight and bias, N(0, 1)
        for the embedding.
    output_size : int or None
        Add a dense head ``weight_out`` (O, dirs*H), ``bias_out`` (O,); None: no head, the
        output is the top layer's.
    readout : {"all", "last"}, default "all"
        "all": many-to-many, the head's output is (T, B, O); "last": many-to-one, (B, O),
        from the final forward state and the backward direction's state at t = 0.
    dropout : float in [0, 1), default 0
        Applied in training mode to the outputs of each layer that feed the next layer and
        to the head's input, never to the recurrent path.
    vocab_size : int or None
        ``V``: the inputs are integer token ids (T, B) in ``0..V-1``, embedded by a learned
        table ``weight_emb`` (V, D) (``torch.nn.Embedding``'s, :mod:`numrnn.nn.embedding`)
        before layer 0; None: the inputs are (T, B, D) features.
    padding_idx : int or None
        With ``vocab_size``: a token whose row of ``weight_emb`` starts at zero and gets no
        gradient, as in torch (``-V..V-1``, a negative one counting from the end).

    Examples
    --------
    >>> import numpy as np, numrnn as nr
    >>> model = nr.LSTM(3, 4, num_layers=2, bidirectional=True, seed=0, output_size=2,
    ...                 readout="last")
    >>> isinstance(model, nr.nn.Recurrent)
    True
    >>> model.params["weight_ih_l1_reverse"].shape      # layer 1 reads (T, B, 2H)
    (16, 8)
    >>> model.forward(np.zeros((5, 3, 3))).output.shape  # the head at the last step
    (3, 2)
    >>> lm = nr.GRU(3, 4, seed=0, vocab_size=10, output_size=10)  # a token model
    >>> lm.params["weight_emb"].shape                   # (V, D)
    (10, 3)
    >>> lm.forward(np.array([[1, 2], [7, 0]])).output.shape   # ids (T, B)
    (2, 2, 10)
    """

    #: the :class:`~numrnn.nn.cells.CellSpec` name; subclasses with one register in
    #: ``cells.MODELS``, so configs and torch modules find their class
    cell_type = None

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if cls.__dict__.get("cell_type") is not None:
            MODELS[cls.cell_type] = cls

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
        vocab_size=None,
        padding_idx=None,
    ):
        self.input_size = _checks.check_positive_int("input_size", input_size)
        self.hidden_size = _checks.check_positive_int("hidden_size", hidden_size)
        self.num_layers = _checks.check_positive_int("num_layers", num_layers)
        self.bidirectional = _checks.check_bool("bidirectional", bidirectional)
        self.num_directions = 2 if bidirectional else 1
        self.dtype = _checks.check_dtype(dtype)
        self.output_size = _checks.check_int("output_size", output_size, 1, none_ok=True)
        self.readout = _checks.check_choice("readout", readout, ("all", "last"))
        self.dropout = _checks.check_number("dropout", dropout, 0.0, 1.0, open_hi=True)
        self.vocab_size = _checks.check_int("vocab_size", vocab_size, 1, none_ok=True)
        self.padding_idx = _emb.check_padding_idx(padding_idx, self.vocab_size)
        self.init = init
        _checks.as_rng(seed, "seed")  # a bad seed is named before any weight is drawn
        self.seed = seed if seed is None or isinstance(seed, (int, np.integer)) else repr(seed)
        self.params = self._init_params(init, seed)

    # -- construction -------------------------------------------------------------------

    def param_shapes(self):
        """The parameters' shapes of one network.

        Returns
        -------
        dict
            {PyTorch's name: shape}, in PyTorch's order: the embedding ``weight_emb``
            first (with ``vocab_size``), the head's last.
        """
        cached = self.__dict__.get("_param_shapes")  # the configuration never changes
        if cached is not None:
            return dict(cached)
        shapes = {}
        if self.vocab_size is not None:
            shapes["weight_emb"] = (self.vocab_size, self.input_size)
        shapes |= layer_shapes(
            self.cell.n_gates,
            self.input_size,
            self.hidden_size,
            self.num_layers,
            self.num_directions,
        )
        if self.output_size is not None:
            shapes["weight_out"] = (self.output_size, self.num_directions * self.hidden_size)
            shapes["bias_out"] = (self.output_size,)
        self._param_shapes = shapes
        return dict(shapes)

    def _init_params(self, init, seed, **kwargs):
        params = init_params(
            self.param_shapes(),
            self.cell.n_gates,
            self.hidden_size,
            init=init,
            rng=seed,
            dtype=self.dtype,
            **kwargs,
        )
        if self.padding_idx is not None:  # torch.nn.Embedding zeroes the padding row
            params["weight_emb"][self.padding_idx] = 0
        return params

    @property
    def config(self):
        """The constructor's arguments as a JSON-serialisable dict (for results' attrs);
        ``vocab_size`` and ``padding_idx`` appear only for a model with an embedding (so
        the configs of the others are as they were)."""
        emb = {}
        if self.vocab_size is not None:
            emb = {"vocab_size": self.vocab_size, "padding_idx": self.padding_idx}
        return {
            "cell": self.cell_name,
            "input_size": self.input_size,
            "hidden_size": self.hidden_size,
            "num_layers": self.num_layers,
            "bidirectional": self.bidirectional,
            "dtype": self.dtype.name,
            "output_size": self.output_size,
            "readout": self.readout,
            "dropout": self.dropout,
            **emb,
            "init": spec_of(self.init),
            "seed": None
            if self.seed is None
            else (int(self.seed) if isinstance(self.seed, (int, np.integer)) else self.seed),
        }

    @property
    def cell_name(self):
        """The cell's config name, e.g. "rnn_relu" (``attrs["cell"]`` of results)."""
        return self.cell.name

    def to_torch(self, embedding=False):
        """The equivalent ``torch.nn`` module with the same weights and dtype.

        Parameters
        ----------
        embedding : bool, default False
            For a model with an embedding: return ``(torch.nn.Embedding, module)``; see
            :func:`numrnn.nn.to_torch`.

        Returns
        -------
        torch.nn.RNN, torch.nn.LSTM or torch.nn.GRU, or (torch.nn.Embedding, module)
            See :func:`numrnn.nn.to_torch`.
        """
        from .torch import to_torch

        return to_torch(self, embedding)

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
    #: whether arrays given and returned carry the member axis (an Ensemble's do)
    stacked = False

    def _stack_input(self, x):
        """Check x (T, B, D), or token ids (T, B); return it as (1, T, B, D) or (1, T, B)."""
        if self.vocab_size is not None:
            return _emb.check_ids("x", x, ("T", "B"), self.vocab_size)[None]
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
        shapes = self.param_shapes()
        if not isinstance(params, dict):
            raise TypeError(
                f"params must be a dict of arrays with keys {list(shapes)}, "
                f"got {type(params).__name__}"
            )
        if params.keys() != shapes.keys():
            missing = sorted(set(shapes) - set(params))
            extra = sorted(set(params) - set(shapes))
            raise ValueError(
                f"params must have keys {list(shapes)}; missing {missing}, unexpected {extra}"
            )
        checked = {
            k: _checks.check_array(
                f"params[{k!r}]", params[k], lead + shapes[k], self.dtype, finite=False
            )
            for k in shapes
        }
        if not _checks.all_finite_many(checked.values()):  # one test for all, then which
            bad = next(k for k, v in checked.items() if not _checks.all_finite(v))
            raise ValueError(f"params[{bad!r}] contains NaN or inf")
        return checked

    def _pack_state(self, states):
        states = [self._unstack(s) for s in states]
        return states[0] if self.n_states == 1 else tuple(states)

    def unstacked(self, a):
        """``a`` with the member axis removed for a single model (kept for an Ensemble):
        how results computed on the (K, ...) layout are handed to users.

        Parameters
        ----------
        a : ndarray, shape (K, ...)

        Returns
        -------
        ndarray
            ``a[0]`` for a single model (K = 1), ``a`` itself for an :class:`Ensemble`.
        """
        return self._unstack(a)

    # -- forward --------------------------------------------------------------------------

    @serial  # the kernels and products parallelise themselves; BLAS runs single-threaded
    def forward(self, x, state=None, lengths=None, *, train=False, rng=None, backend="cpu"):
        """Run the model over a batch of sequences.

        Parameters
        ----------
        x : ndarray, shape (T, B, D)
            Inputs, time-major, of the model's dtype. An :class:`Ensemble` also takes
            (K, T, B, D), one input per member. With an embedding (``vocab_size``):
            integer token ids (T, B) in ``0..V-1`` (an Ensemble also (K, T, B)), looked
            up in ``weight_emb`` on the host before the kernels run.
        state : ndarray, tuple of two ndarrays, or None
            The initial state (layers*dirs, B, H); a tuple (h, c) for the LSTM; None for
            zeros.
        lengths : array of int, shape (B,), or None
            Each sequence's length, in 1..T; steps past it leave the sequence's state
            unchanged and give zero output, as with PyTorch's packed sequences. The
            backward direction runs each sequence reversed within its own length. None:
            all T.
        train : bool, default False
            Training mode: dropout is active only then.
        rng : numpy.random.Generator, int, list or None
            Source of the dropout masks (training mode only); for an :class:`Ensemble`
            also a list of one per member, each member then drawing exactly the masks it
            would draw as a single model.
        backend : {"cpu", "cuda"}, default "cpu"
            Compiled Numba kernels on the CPU, or ``numba.cuda`` kernels; ``backward`` uses
            the same backend.

        Returns
        -------
        Forward
            ``output`` (T, B, dirs*H), or the head's (T, B, O) or (B, O); ``state``
            (layers*dirs, B, H), a tuple (h, c) for the LSTM; ``tape``, what
            :meth:`backward` and the diagnostics need.

        Examples
        --------
        >>> import numpy as np, numrnn as nr
        >>> model = nr.GRU(3, 4, bidirectional=True, seed=0)
        >>> x = np.random.default_rng(0).standard_normal((6, 2, 3))
        >>> res = model.forward(x, lengths=[6, 3])
        >>> res
        Forward(output=array(6, 2, 8), state=array(2, 2, 4))
        >>> float(np.abs(res.output[3:, 1]).max())     # past the second sequence's end
        0.0
        """
        k = kernels(backend)
        x = self._stack_input(x)
        _, T, B = x.shape[:3]
        states0 = self._stack_state("state", state, B)
        w = self._stack_weights()
        K = w[key("weight_hh", 0, 0)].shape[0]
        ids = None
        if self.vocab_size is not None:  # layer 0 reads the embedded ids (K, T, B, D)
            ids, x = x, _emb.lookup(w["weight_emb"], x)
        if K * B == 1:
            one_thread()
        if lengths is not None:
            lengths = _checks.check_lengths(lengths, T, B)
        drop = self.dropout if train else 0.0
        if drop:
            rng = _head.member_rngs(rng, K)

        packed = PackedBatch.make(lengths, T, B)
        if packed.order is not None:
            x = packed.sort(x, 2)
            states0 = tuple(packed.sort(s, 2) for s in states0)
        H, L, dirs = self.hidden_size, self.num_layers, self.num_directions
        finals = tuple(np.empty((K, L * dirs, B, H), self.dtype) for _ in range(self.n_states))
        layers, masks = [], []
        inp = x
        for layer in range(L):
            outs = []
            for d in range(dirs):
                xin = packed.direction(inp, d)
                traj, cache = self.cell.forward(
                    k,
                    xin,
                    *(w[key(kind, layer, d)] for kind in _CELL_ORDER),
                    tuple(np.ascontiguousarray(s[:, layer * dirs + d]) for s in states0),
                    packed.batch_sizes,
                )
                for s, final in zip(traj, finals, strict=True):
                    final[:, layer * dirs + d] = packed.final(s)
                out = traj[0][:, 1:]
                outs.append(out if d == 0 else packed.flip(out))
                layers.append(LayerTape(xin, cache))
            inp = outs[0] if dirs == 1 else np.concatenate(outs, axis=3)
            if drop and layer < L - 1:
                inp, mask = _head.dropout(inp, drop, rng)
                masks.append(mask)

        output, feats, head_mask = inp, None, None
        if self.output_size is not None:
            output, feats, head_mask = _head.forward(self, w, inp, finals[0], packed, drop, rng)
        tape = Tape(self, packed, K, k, w, tuple(layers), tuple(masks), feats, head_mask, ids)
        batch_axis = output.ndim - 2 if self.output_size and self.readout == "last" else 2
        return Forward(
            output=self._unstack(packed.unsort(output, batch_axis)),
            state=self._pack_state([packed.unsort(f, 2) for f in finals]),
            tape=tape,
        )

    def predict(self, x, lengths=None, *, chunk=None, steps=None, backend="cpu"):
        """The outputs in eval mode (no dropout), ``chunk`` sequences and at most ``steps``
        steps at a time, keeping no tape: memory bounded by the pieces, for evaluating on
        large sets and long sequences.

        Parameters
        ----------
        x : ndarray, shape (T, B, D)
            As in :meth:`forward` (an :class:`Ensemble` also takes (K, T, B, D); token ids
            (T, B) or (K, T, B) with an embedding).
        lengths : array of int, shape (B,), or None
            As in :meth:`forward`.
        chunk : int or None
            Sequences per pass; None: the ``eval_chunk`` option (:func:`numrnn.set_options`).
            Each sequence's output is its own: the chunks change it at most in the last
            bits, where a product is blocked differently.
        steps : int or None
            Run each chunk of sequences ``steps`` time steps at a time, each piece starting
            from the state the last one ended in (a unidirectional model; ``lengths``
            None); None: all T at once. Like ``chunk``, it changes outputs at most in the
            last bits.
        backend : {"cpu", "cuda"}, default "cpu"

        Returns
        -------
        ndarray
            :meth:`forward`'s ``output`` for the whole batch: (T, B, dirs*H), or the
            head's (T, B, O) or (B, O); an Ensemble's with a leading K.

        Examples
        --------
        >>> import numpy as np, numrnn as nr
        >>> model = nr.LSTM(3, 4, output_size=2, readout="last", dropout=0.5, num_layers=2,
        ...                 seed=0)
        >>> x = np.random.default_rng(0).standard_normal((5, 7, 3))
        >>> y = model.predict(x, chunk=3)                      # three passes of <= 3
        >>> y.shape, bool(np.allclose(y, model.forward(x).output, rtol=1e-13, atol=0))
        ((7, 2), True)
        """
        if chunk is None:
            chunk = get_option("eval_chunk")
        chunk = _checks.check_positive_int("chunk", chunk)
        xs = self._stack_input(x)  # checked: (K or 1, T, B, D), or ids (K or 1, T, B)
        shared = np.ndim(x) == (2 if self.vocab_size is not None else 3)
        T, B = xs.shape[1], xs.shape[2]
        if lengths is not None:
            lengths = _checks.check_lengths(lengths, T, B)
        steps = T if steps is None else _checks.check_positive_int("steps", steps)
        if steps < T and (self.bidirectional or lengths is not None):
            raise ValueError("steps needs a unidirectional model and lengths None: a backward "
                             "direction, or a sequence ending inside a piece, needs the whole "
                             "sequence in one pass")  # fmt: skip
        last = self.output_size is not None and self.readout == "last"
        with ahead.paused():  # no backward pass follows
            pieces = self._predict_pieces(xs, shared, lengths, chunk, steps, last, backend)
        return np.concatenate(pieces, axis=(0 if last else 1) + int(self.stacked))

    def _predict_pieces(self, xs, shared, lengths, chunk, steps, last, backend):
        """:meth:`predict`'s outputs of each piece of ``chunk`` sequences."""
        T, B = xs.shape[1], xs.shape[2]
        pieces = []
        for i in range(0, B, chunk):
            part = xs[0, :, i : i + chunk] if shared else xs[:, :, i : i + chunk]
            sub = None if lengths is None else lengths[i : i + chunk]
            state, outs = None, []
            for t in range(0, T, steps):  # one piece: all T, or steps at a time
                res = self.forward(part[(slice(None),) * (not shared) + (slice(t, t + steps),)],
                                   state, sub, backend=backend)  # fmt: skip
                state = res.state
                outs.append(res.output)
            # many-to-one: the last piece's output; many-to-many: the pieces side by side
            pieces.append(outs[-1] if last else np.concatenate(outs, axis=int(self.stacked)))
        return pieces

    # -- backward -------------------------------------------------------------------------

    @serial
    def backward(self, res, d_output, d_state=None, *, norms=False, input_grad=True):
        """Backpropagation through time for ``L = sum(d_output * output) + sum(d_state * state)``.

        Exact gradients of that scalar with respect to every parameter, the input and the
        initial state, computed in compiled kernels from what :meth:`forward` saved.

        Parameters
        ----------
        res : Forward
            The result of this model's :meth:`forward` (a result of another model raises
            ``ValueError``).
        d_output : ndarray
            dL/d(output), of ``res.output``'s shape.
        d_state : ndarray, tuple of two ndarrays, or None
            dL/d(final state), like ``res.state``; None for zero.
        norms : bool, default False
            Also return ||dL/dh_t|| (and for the LSTM ||dL/dc_t||) for every layer,
            direction, sequence and step, computed inside the BPTT kernels.
        input_grad : bool, default True
            False skips the gradient with respect to x (``Gradients.input`` is then None),
            a product over the whole trajectory that training does not need. With an
            embedding that product is made anyway (``weight_emb``'s gradient needs it),
            and ``Gradients.input`` is the gradient with respect to the embedded input
            ``weight_emb[x]`` (T, B, D).

        Returns
        -------
        Gradients
            ``params`` (same keys and shapes as ``model.params``; ``weight_emb``'s is the
            embedded input's gradient added into the rows of the ids, zero for
            ``padding_idx``), ``input`` (T, B, D) or None, ``state`` (like the initial
            state) and ``norms`` ((layers, dirs, B, T) arrays ``grad_norm`` and
            ``cell_grad_norm``, when asked for).

        Examples
        --------
        >>> import numpy as np, numrnn as nr
        >>> model = nr.LSTM(3, 4, seed=0)
        >>> x = np.random.default_rng(0).standard_normal((6, 2, 3))
        >>> res = model.forward(x)
        >>> g = model.backward(res, np.ones_like(res.output), norms=True)
        >>> g.params["weight_hh_l0"].shape, g.input.shape
        ((16, 4), (6, 2, 3))
        >>> sorted(g.norms), g.norms["grad_norm"].shape    # (layers, dirs, B, T)
        (['cell_grad_norm', 'grad_norm'], (1, 1, 2, 6))
        """
        if not isinstance(res, Forward) or not isinstance(res.tape, Tape):
            raise TypeError(
                f"res must be the Forward result of model.forward, got {type(res).__name__}"
            )
        tp = res.tape
        if tp.model is not self:
            raise ValueError(
                "res must come from this model's forward, got the result of another model "
                f"({tp.model!r}); run forward and backward on the same model"
            )
        T, B, K, packed = tp.T, tp.B, tp.K, tp.packed
        if K * B == 1:
            one_thread()
        w = tp.weights
        d_output = _checks.check_array("d_output", d_output, res.output.shape, self.dtype)
        d_output = d_output if self.stacked else d_output[None]
        dstates = self._stack_state("d_state", d_state, B)
        head_last = self.output_size is not None and self.readout == "last"
        if packed.order is not None:
            d_output = packed.sort(d_output, 1 if head_last else 2)
            dstates = tuple(packed.sort(s, 2) for s in dstates)
        H, L, dirs = self.hidden_size, self.num_layers, self.num_directions
        # own copies (the head adds into them), one per member (np.broadcast_to is slow)
        dfinals = tuple(s.copy() if len(s) == K else np.repeat(s, K, axis=0) for s in dstates)

        ahead.wait(self.cell.spec.name, self.dtype)  # backward kernels compiling elsewhere
        # the head: its gradient enters the top layer's output (or final states)
        grads = {}
        dtop = d_output
        if self.output_size is not None:
            grads, dtop = _head.backward(self, tp, d_output, dfinals)

        shape = (K, L, dirs, B, T)
        wanted = self.cell.state_names if norms else ()
        norm_arrays = {n: np.full(shape, np.nan, self.dtype) for n in wanted}
        no_norm = np.zeros((0, 0, 0), self.dtype)
        masks = list(tp.masks)
        dinp = dtop
        embedded = self.vocab_size is not None
        dstate0 = tuple(np.zeros((K,) + s.shape[1:], self.dtype) for s in dstates)
        for layer in range(L - 1, -1, -1):
            if masks and layer < L - 1:
                dinp = dinp * masks.pop()
            dnext = None
            for d in range(dirs):
                idx = layer * dirs + d
                entry = tp.layer(layer, d)
                dout = packed.direction(dinp[..., d * H : (d + 1) * H], d)
                kn = tuple(np.empty((K, T, B), self.dtype) if norms else no_norm for _ in dstates)
                w_ih = w[key("weight_ih", layer, d)]
                want_dx = layer > 0 or input_grad or embedded
                dxin, wgrads, ds0 = self.cell.backward(
                    tp.kernels,
                    entry.cache,
                    w_ih if want_dx else w_ih[..., :0],
                    w[key("weight_hh", layer, d)],
                    entry.xin,
                    dout,
                    tuple(np.ascontiguousarray(s[:, idx]) for s in dfinals),
                    packed.batch_sizes,
                    kn,
                )
                for s0, g in zip(dstate0, ds0, strict=True):
                    s0[:, idx] = g
                for name, a in zip(wanted, kn, strict=False):
                    # back to real time (the backward direction ran reversed)
                    a = packed.flip(a) if d else a
                    norm_arrays[name][:, layer, d] = a.transpose(0, 2, 1)
                for kind, g in zip(_CELL_ORDER, wgrads, strict=True):
                    grads[key(kind, layer, d)] = g
                if not want_dx:
                    continue
                if d == 1:
                    dxin = packed.flip(dxin)
                dnext = dxin if dnext is None else dnext + dxin
            dinp = dnext

        if dinp is not None:
            dinp = packed.unsort(dinp, 2)
        if embedded:
            grads["weight_emb"] = _emb.scatter_grad(dinp, tp.ids, self.vocab_size,
                                                    self.padding_idx)  # fmt: skip
        names = {"h": "grad_norm", "c": "cell_grad_norm"}
        return Gradients(
            params={k: self._unstack(grads[k]) for k in self.param_shapes()},
            input=self._unstack(dinp) if input_grad else None,
            state=self._pack_state([packed.unsort(s, 2) for s in dstate0]),
            norms={names[n]: self._unstack(packed.unsort(a, 3)) for n, a in norm_arrays.items()},
        )
