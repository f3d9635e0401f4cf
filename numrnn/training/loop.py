"""The training loop: minibatch gradient descent on a task, recorded into an xarray Dataset.

:func:`train` samples batches from a task, runs the model forward (dropout active) and
backward through time, clips the gradient, updates the parameters with an optimizer, and
records the run over a ``step`` dimension. A run whose loss or gradient becomes NaN or inf
stops cleanly and is marked ``attrs["status"] = "diverged"``; nothing is raised.

Row ``s`` of the result describes the model after ``s`` updates, ``s = 0 .. steps``: the loss
and pre-clip gradient norm of the batch drawn at that step (whose gradient makes update
``s + 1``; the last row's batch makes none), the test loss and metric of the same
parameters, and diagnostics snapshots taken on the same batch.

An ensemble's members train together (one compiled call per layer and step) and each
exactly as it would alone; :class:`_Members` keeps track of which are still training.
"""

import math
import warnings

import numpy as np

from .. import losses as _losses
from .. import optim as _optim
from .._checks import all_finite, all_finite_many
from ..nn.recurrent import Recurrent
from ..tasks import unpack
from .record import Recorder, stack
from .spec import TrainSpec


def _check_model_for_task(model, task, spec):
    if not isinstance(model, Recurrent):
        raise TypeError(
            f"model must be a numrnn RNN, LSTM, GRU or Ensemble, got {type(model).__name__}"
        )
    for attr in ("input_size", "output_size", "readout"):
        if not hasattr(task, attr):
            raise TypeError(f"task must be a numrnn.tasks.Task, got {type(task).__name__}")
    tokens = getattr(task, "vocab_size", None)
    if getattr(model, "vocab_size", None) is not None and tokens is None:
        raise ValueError(
            f"model takes token ids (vocab_size={model.vocab_size}), but task "
            f"{task.name!r} has float inputs: build it without vocab_size"
        )
    # a token task fixes the vocabulary; the embedding's width (input_size) is the model's
    attrs = ("vocab_size" if tokens is not None else "input_size", "output_size", "readout")
    for attr in attrs:
        want, got = getattr(task, attr), getattr(model, attr, None)
        if want != got:
            raise ValueError(
                f"model.{attr} must equal task.{attr} = {want!r} for task {task.name!r}, got "
                f"{got!r}; build the model with {attr}={want!r}"
            )
    if spec.tbptt is not None and model.bidirectional:
        raise ValueError("tbptt needs a unidirectional model: a backward direction reads the "
                         "whole sequence before its first output")  # fmt: skip


def _seeds(seed, members):
    """One int seed per member (``members`` None: a single model), from a seed checked by
    :class:`TrainSpec`: a list must have one per member, None draws fresh entropy."""
    n = 1 if members is None else members
    if members is not None and isinstance(seed, (list, tuple, np.ndarray)):
        if len(seed) != n:
            raise ValueError(f"seed must be an int or a list of {n} (one per member), got "
                             f"{len(seed)}")  # fmt: skip
        seeds = list(seed)
    else:  # one seed for every member; None: one fresh draw, shared
        seeds = [int(np.random.SeedSequence().entropy % 2**63) if seed is None else seed] * n
    return [int(np.random.SeedSequence().entropy % 2**63) if v is None else int(v)
            for v in seeds]  # fmt: skip


def _evaluate(model, task, test, loss_fn, spec):
    """[(test loss, test metric)] per member of the model in eval mode on the task's test set
    ``test`` = (x, y, lengths).

    The test set runs through :meth:`~numrnn.nn.Recurrent.predict`, in pieces of
    ``eval_chunk`` sequences (an option) whose trajectories stay in cache, instead of one
    pass allocating (and page-faulting in) all of them; the same pieces for any ensemble
    size, so that a member's test loss is its own bit for bit. With truncated BPTT they
    also run ``tbptt`` steps at a time, so that memory stays bounded by the chunk.
    """
    x, y, lengths = test
    per_step = lengths if task.readout == "all" else None  # the losses' mask
    try:
        with np.errstate(all="ignore"):
            out = model.predict(x, lengths, steps=spec.tbptt, backend=spec.backend)
            pairs = []
            for o in out if model.stacked else [out]:
                loss, _ = loss_fn(o, y, per_step)
                metric = _losses.accuracy(o, y, per_step) if task.loss == "xent" else loss
                pairs.append((loss, metric))
    except (TypeError, ValueError) as err:  # raised at step 0, before any update
        raise type(err)(f"task {task.name!r}: its test set does not fit the model: {err}") from err
    return pairs


class _Stream:
    """The inputs of each update.

    Without truncated BPTT every update draws a new batch (one per member unless they share
    a seed) and starts from the zero state. With ``tbptt = k`` a batch is cut into
    consecutive chunks of k steps (the last may be shorter); each chunk makes one update
    and starts from the state the previous chunk ended in, taken as a constant: gradients
    stop at chunk borders, as with PyTorch's ``state.detach()``. A many-to-one task has its
    loss in the last chunk only: the chunks before it run forward only, to carry the state.
    """

    def __init__(self, model, task, spec, data_rngs, drop_rngs):
        self.model, self.task, self.spec = model, task, spec
        self.rngs, self.drop_rngs = data_rngs, drop_rngs
        self.shared = len(data_rngs) == 1
        self.tokens = getattr(model, "vocab_size", None) is not None
        self.batch, self.t0, self.state = None, 0, None

    def _draw(self):
        task, B = self.task, self.spec.batch_size
        batches = [unpack(task.sample(B, r)) for r in self.rngs]
        x, y, lengths = batches[0]
        if self.shared:
            ys = [y] * self.model.members
        else:  # one batch per member, stacked
            for _, _, other in batches[1:]:
                if not (lengths is None and other is None or
                        other is not None and np.array_equal(lengths, other)):  # fmt: skip
                    raise ValueError(
                        "an ensemble trained on variable-length sequences needs one seed for "
                        "all members (their batches share the lengths), got one seed per member"
                    )
            x, ys = np.stack([b[0] for b in batches]), [b[1] for b in batches]
        if not self.tokens:
            x = x.astype(self.model.dtype, copy=False)
        return x, ys, lengths

    def _chunk(self, x, t0, t1):
        return x[(slice(None),) * (not self.shared) + (slice(t0, t1),)]

    def next(self):
        """``(x, ys, lengths, state)``: the inputs of the next update, one target per
        member, the lengths (or None) and the state to start from (None: zeros)."""
        k = self.spec.tbptt
        if k is None:
            return (*self._draw(), None)
        T = self.task.seq_len
        if self.batch is None or self.t0 >= T:
            self.batch, self.t0, self.state = self._draw(), 0, None
            lengths = self.batch[2]
            if lengths is not None:
                raise ValueError(
                    "tbptt needs sequences of equal length; this batch has "
                    f"lengths from {lengths.min()} to {lengths.max()}"
                )
            if self.task.readout == "last":  # carry the state to the chunk with the loss
                for t0 in range(0, (T - 1) // k * k, k):
                    res = self.model.forward(self._chunk(self.batch[0], t0, t0 + k),
                                             self.state, train=True, rng=self.drop_rngs,
                                             backend=self.spec.backend)  # fmt: skip
                    self.carry(res.state)
                    self.t0 = t0 + k
        x, ys, _ = self.batch
        t0, t1 = self.t0, min(self.t0 + k, T)
        self.t0 = t1
        if self.task.readout == "all":
            ys = [y[t0:t1] for y in ys]
        return self._chunk(x, t0, t1), ys, None, self.state

    def carry(self, state):
        """Start the next chunk from ``state`` (a forward pass's final state). Non-finite
        entries, of members that diverge here, become zeros: they leave training."""
        if self.spec.tbptt is None:
            return
        parts = state if isinstance(state, tuple) else (state,)
        parts = tuple(np.where(np.isfinite(p), p, 0).astype(p.dtype) for p in parts)
        self.state = parts if isinstance(state, tuple) else parts[0]


class _EarlyStopping:
    """Per member: the best test (validation) loss so far, its step and weights, and the
    evaluations made since it."""

    def __init__(self, settings, K):
        self.patience, self.min_delta = settings["patience"], settings["min_delta"]
        self.best = [math.inf] * K
        self.best_step = [-1] * K
        self.weights = [None] * K
        self.waited = [0] * K
        self.stopped_at = [-1] * K

    def update(self, k, step, loss, params):
        """Member k's test loss at ``step``; True when it has not improved by more than
        ``min_delta`` for ``patience`` evaluations (the member stops)."""
        if loss < self.best[k] - self.min_delta:
            self.best[k], self.best_step[k], self.waited[k] = loss, step, 0
            self.weights[k] = {n: v.copy() for n, v in params.items()}
            return False
        self.waited[k] += 1
        if self.waited[k] >= self.patience:
            self.stopped_at[k] = step
            return True
        return False

    def attrs(self, k):
        return {"best_step": self.best_step[k], "stopped_at": self.stopped_at[k]}


class _Members:
    """Which of a model's K members still train, and what happened to the others.

    A member whose loss or gradient is not finite has diverged: it stops, keeps its
    weights as they were then (restored by :meth:`restore` when training ends), and its
    weights are zeroed meanwhile so that the ensemble's pass stays finite for the others.
    """

    def __init__(self, model):
        self.model = model
        self.status = ["ok"] * model.members
        self.diverged_at = [-1] * model.members
        self.alive = dict.fromkeys(range(model.members))  # in order; `k in alive` at once
        self.frozen = {}  # member -> its weights when it stopped

    def view(self, d, k):
        """Member k's part of a dict of (stacked) arrays, as views."""
        return {n: v[k] for n, v in d.items()} if self.model.stacked else d

    def stacked(self, d):
        """A dict of arrays with the member axis first: an ensemble's as they are, a single
        model's as (1, ...) views."""
        return d if self.model.stacked else {n: v[None] for n, v in d.items()}

    def retire(self, k):
        """Zero member k's weights (once), keeping a copy of what they were."""
        if k not in self.frozen:
            params = self.view(self.model.params, k)
            self.frozen[k] = {n: v.copy() for n, v in params.items()}
            for v in params.values():
                v[...] = 0

    def lose_nonfinite(self):
        """Retire the members whose last update made their weights non-finite; return them."""
        params = self.model.params
        with np.errstate(over="ignore"):  # weights above 1e154 overflow the sum of squares
            if all_finite_many(params.values()):  # usually: one test for all
                return set()
            lost = {k for k in self.alive
                    if not all(all_finite(v) for v in self.view(params, k).values())}  # fmt: skip
        for k in lost:
            self.retire(k)
        return lost

    def diverge(self, k, step):
        self.status[k], self.diverged_at[k] = "diverged", step
        self.retire(k)
        del self.alive[k]

    def stop(self, k, weights):
        """Stop member k early (it stays "ok"); it ends with ``weights``."""
        self.retire(k)
        self.frozen[k] = weights
        del self.alive[k]

    def restore(self):
        """Put back the weights the retired members had when they stopped."""
        for k, params in self.frozen.items():
            for n, v in self.view(self.model.params, k).items():
                v[...] = params[n]


def _batch_mean(a, T):
    """The batch mean (layers, dirs, T) of a (layers, dirs, B, t) snapshot, over the
    sequences that reach each step (NaN where none does), padded with NaN to ``T`` steps
    (a truncated-BPTT chunk may be shorter)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a step that is padding everywhere
        m = np.nanmean(a, axis=2)
    if m.shape[-1] == T:
        return m
    return np.concatenate([m, np.full(m.shape[:-1] + (T - m.shape[-1],), np.nan)], axis=-1)


def _scheduled(base_lr, schedule, step):
    """The rate of update ``step + 1``: ``base_lr`` (a float, or a tuple of one per member)
    times ``schedule(step)``, or ``base_lr`` itself without a schedule."""
    if schedule is None:
        return base_lr
    factor = schedule(step)
    return tuple(r * factor for r in base_lr) if isinstance(base_lr, tuple) else base_lr * factor


def _update(model, members, opt, grads, clip, clip_value, norms):
    """Clip each training member's gradient on its own, then one optimizer step; retired
    members get a zero gradient and stay at zero (an optimizer's momentum would move them).
    Each clipping runs over all members at once, each member's arithmetic that of the
    member alone; ``norms``, the members' gradient norms (``optim.global_norms``), serve
    the norm clipping unless value clipping changed the gradients first."""
    with np.errstate(all="ignore"):
        for k in range(model.members):
            if k not in members.alive:
                for v in members.view(grads, k).values():
                    v[...] = 0
        if clip_value is not None:
            for g in grads.values():  # elementwise: as each member alone
                np.clip(g, -clip_value, clip_value, out=g)
            norms = None
        if clip is not None:
            _optim.clip_grad_norms(members.stacked(grads), clip, norms)
        opt.step(model.params, grads)
        for k in members.frozen:
            for v in members.view(model.params, k).values():
                v[...] = 0


def train(model, task, steps, batch_size, optimizer, clip=None, clip_value=None, seed=None,
          record_every=1, eval_every=None, diagnostics=(), diagnostics_every=None, weights_at=(),
          progress=True, backend="cpu", schedule=None, tbptt=None,
          early_stopping=None):  # fmt: skip
    """Train ``model`` on ``task`` in place and record the run.

    Parameters
    ----------
    model : RNN, LSTM or GRU with a head matching the task: ``input_size``,
        ``output_size`` and ``readout`` equal to the task's (else ValueError); or an
        :class:`~numrnn.Ensemble` of such models, whose K members train together
        (one compiled call per layer and step) and each exactly as it would alone: the
        same batches, dropout masks, clipping, updates and divergence, bit for bit.
    task : a :class:`numrnn.tasks.Task`; its ``loss`` ("mse" or "xent") is minimised.
    steps : int, the number of parameter updates.
    batch_size : int, sequences per batch, drawn with ``task.sample`` (with their lengths,
        from a task of variable-length sequences: padding is skipped and left out of the
        loss).
    optimizer : a :class:`numrnn.optim.Optimizer`, or a ``(name, kwargs)`` pair such as
        ``("adam", {"lr": 1e-3})``. An instance keeps its state (it is not copied). For
        an ensemble, ``lr`` may be a list of one rate per member: a learning-rate grid
        trained together, each member exactly as alone with its rate.
    clip : float or None; clip the gradient's global norm to this (Pascanu et al. 2013).
    clip_value : float or None; clamp each gradient entry to ``[-clip_value, clip_value]``
        (done before norm clipping, so the final norm is at most ``clip``).
    seed : int or None; seeds the batches and the dropout masks (two independent streams).
        None draws fresh entropy, stored in ``attrs["train"]`` so the run can be repeated.
        The model's initial weights are the model's own (its ``seed``). An ensemble takes
        one seed for every member or a list of one per member.
    record_every : int; record the loss and gradient norm every this many steps. Evaluation,
        diagnostics and the last step are always recorded as well.
    eval_every : int or None; evaluate on ``task.test_set()`` every this many steps and at
        the last one (None: about 20 evaluations).
    diagnostics : iterable of names in :data:`~numrnn.training.DIAGNOSTICS` to snapshot.
    diagnostics_every : int or None; snapshot every this many steps and at the last one
        (None: about 10 snapshots).
    weights_at : list of steps (0..steps) after which to keep a copy of the parameters,
        besides the initial and final ones (always kept).
    progress : bool; show a tqdm progress bar.
    backend : "cpu" or "cuda": where the forward and backward passes run.
    schedule : a learning-rate schedule of :mod:`numrnn.schedules` (a
        :class:`~numrnn.schedules.Schedule`, a name or a ``(name, kwargs)`` pair such as
        ``("cosine", {"T_max": 1000})``), or None for a constant rate. Update ``s + 1``
        uses the optimizer's rate as built times ``schedule(s)`` (each member's own rate
        times it, with one rate per member); the optimizer gets its rate back at the end.
        The schedule starts at 0 in every call, whatever an optimizer instance did before.
    tbptt : int or None; truncated backpropagation through time: each batch is cut into
        chunks of this many steps, each chunk one update (so ``steps`` counts chunks),
        starting from the state the previous chunk of the batch ended in, with gradients
        stopped at chunk borders (PyTorch's ``state.detach()`` loop). Memory is bounded by
        the chunk, not by T. A many-to-one task updates once per batch, from its last chunk
        (the chunks before it run forward only). Needs a unidirectional model and
        sequences of equal length. None: full BPTT over each batch.
    early_stopping : int, dict or None; stop when the test (validation) loss has not
        improved by more than ``min_delta`` for ``patience`` evaluations in a row (an int
        is the patience, ``min_delta`` 0; or ``{"patience": 5, "min_delta": 1e-4}``), and end
        with the weights of the lowest test loss, in the model and as the "final" weights
        (``when_step`` their step). Each ensemble member stops on its own.

    Returns
    -------
    xarray.Dataset over ``step`` (the number of updates made before the row, 0..steps):

    - ``loss`` (step): the training loss of the step's batch;
    - ``grad_norm_total`` (step): the global norm of its gradient *before* clipping;
    - ``test_loss``, ``test_metric`` (step): on the test set, NaN except at evaluation
      steps; the metric is the accuracy for "xent" tasks, the MSE for "mse" tasks;
    - ``learning_rate`` (step): the rate of the update the step's batch makes (update
      ``s + 1``, after any schedule), NaN where none follows (the last row, a diverged
      row); an ensemble member's own rate. (Not ``lr``: a sweep's grid over ``train.lr``
      makes a dimension of that name.)
    - ``grad_norm`` (step, layer, direction, time), and ``cell_grad_norm`` for the LSTM: the
      batch mean of ||dL/dh_t|| (||dL/dc_t||), NaN except at diagnostics steps;
    - ``jacobian_norm`` (step, layer, direction, time): the batch mean of ||ds_T/ds_t||_2
      on the step's batch (eval mode), NaN except at diagnostics steps;
    - the parameters, one variable per PyTorch name (``weight_hh_l0``, ...) over ``when``
      ("initial", "step <n>" for ``weights_at``, "final") and named dims (see
      :mod:`numrnn.weights`); :func:`numrnn.models_from` rebuilds the networks from them.

    ``attrs``: ``config`` (model), ``task``, ``train`` and ``init`` as JSON strings,
    ``status`` ("ok" or "diverged"), ``diverged_at`` (the step whose loss or gradient was
    NaN/inf, or whose parameters were; -1 if none), ``loss``, ``metric`` and ``baseline``;
    with early stopping also ``best_step`` (the step of the lowest test loss) and
    ``stopped_at`` (the evaluation step where it stopped, -1 if it ran all ``steps``).
    A diverged run ends at its ``diverged_at`` row, which holds the non-finite values.

    For an ensemble the variables gain a leading ``member`` dimension (NaN at the steps a
    member did not record, e.g. after it diverged), ``status`` and ``diverged_at`` are
    (member,) variables (so are ``best_step`` and ``stopped_at``), and a diverged member's
    weights stay as they were when it diverged while the others train on.

    Examples
    --------
    >>> import numrnn as nr
    >>> task = nr.tasks.Adding(T=8)
    >>> model = nr.RNN(2, 8, seed=0, output_size=1, readout="last")
    >>> run = nr.train(model, task, steps=20, batch_size=16, optimizer=("adam", {"lr": 1e-2}),
    ...                clip=1.0, seed=0, eval_every=10, progress=False)
    >>> run.attrs["status"], run.sizes["step"], list(run.data_vars)[:4], list(run["when"].values)
    ('ok', 21, ['loss', 'grad_norm_total', 'test_loss', 'test_metric'], ['initial', 'final'])
    >>> run.test_loss.dropna("step").step.values               # evaluated every 10 steps
    array([ 0, 10, 20])
    """
    spec = TrainSpec(steps, batch_size, optimizer, clip=clip, clip_value=clip_value, seed=seed,
                     record_every=record_every, eval_every=eval_every, diagnostics=diagnostics,
                     diagnostics_every=diagnostics_every, weights_at=weights_at,
                     progress=progress, backend=backend, schedule=schedule, tbptt=tbptt,
                     early_stopping=early_stopping)  # fmt: skip
    runs = run(model, task, spec)
    return stack(runs, model) if model.stacked else runs[0]


def train_members(model, task, steps, batch_size, optimizer, **settings):
    """:func:`train`, returning one Dataset per member (a list of one for a single model),
    each exactly what :func:`train` returns for that member trained alone.

    Parameters
    ----------
    model, task, steps, batch_size, optimizer
        As in :func:`numrnn.train`.
    **settings
        The other settings of :func:`numrnn.train` (``clip``, ``seed``, ...).

    Returns
    -------
    list of xarray.Dataset
        One per member, in order.

    Examples
    --------
    >>> import numrnn as nr
    >>> task = nr.tasks.Adding(T=6)
    >>> ens = nr.ensemble([nr.RNN(2, 4, seed=s, output_size=1, readout="last")
    ...                    for s in range(3)])
    >>> runs = nr.training.train_members(ens, task, 5, 8, ("sgd", {"lr": 0.1}),
    ...                                  seed=0, progress=False)
    >>> [r.attrs["status"] for r in runs]
    ['ok', 'ok', 'ok']
    """
    return run(model, task, TrainSpec(steps, batch_size, optimizer, **settings))


def run(model, task, spec):
    """Train ``model`` on ``task`` with the settings ``spec`` (:class:`TrainSpec`); one
    Dataset per member, as :func:`train_members` returns.

    Parameters
    ----------
    model : RNN, LSTM, GRU or Ensemble
        With a head matching the task (see :func:`numrnn.train`); trained in place.
    task : numrnn.tasks.Task
    spec : TrainSpec
        The settings, validated when it was built.

    Returns
    -------
    list of xarray.Dataset
        One per member (one for a single model).

    Examples
    --------
    >>> import numrnn as nr
    >>> spec = nr.training.TrainSpec(4, 8, ("adam", {"lr": 1e-2}), progress=False)
    >>> model = nr.GRU(2, 4, seed=0, output_size=1, readout="last")
    >>> (run,) = nr.training.run(model, nr.tasks.Adding(T=6), spec)
    >>> run.sizes["step"]
    5
    """
    from tqdm import tqdm

    from .. import diagnostics as _diag

    _check_model_for_task(model, task, spec)
    opt = spec.optimizer_instance()
    if isinstance(opt.lr, tuple) and len(opt.lr) != (model.members if model.stacked else 0):
        raise ValueError(
            f"optimizer lr has {len(opt.lr)} rates, one per ensemble member, but the model "
            + (f"has {model.members} members" if model.stacked else "is a single network")
        )
    plan = spec.plan()
    recorded, evals, diags = (set(plan[k].tolist()) for k in ("recorded", "eval", "diagnostics"))
    stacked, K = model.stacked, model.members
    seeds = _seeds(spec.seed, K if stacked else None)
    streams = [[np.random.default_rng(s) for s in np.random.SeedSequence(v).spawn(2)]
               for v in seeds]  # fmt: skip
    data_rngs = [d for d, _ in streams]
    drop_rngs = [r for _, r in streams] if stacked else streams[0][1]
    # every member draws the same batches (one seed): draw them once
    stream = _Stream(model, task, spec, data_rngs[:1] if len(set(seeds)) == 1 else data_rngs,
                     drop_rngs)  # fmt: skip

    loss_fn = _losses.get(task.loss)
    test = unpack(task.test_set())
    if not stream.tokens:
        test = (test[0].astype(model.dtype, copy=False), *test[1:])
    want_norms = "grad_norm" in spec.diagnostics
    want_jac = "jacobian_norm" in spec.diagnostics
    stopper = None if spec.early_stopping is None else _EarlyStopping(spec.early_stopping, K)
    T_rec = task.seq_len if spec.tbptt is None else min(spec.tbptt, task.seq_len)

    members, rec = _Members(model), Recorder(K, T_rec)
    base_lr = opt.lr  # the rate as built; a schedule scales it, and it is put back at the end
    name = f"{K} x {model.cell_name}" if stacked else model.cell_name
    bar = tqdm(total=spec.steps, disable=not spec.progress, desc=f"{name} on {task.name}")
    try:
        for s in range(spec.steps + 1):
            lr = _scheduled(base_lr, spec.schedule, s)  # the rate of update s + 1
            x, ys, lengths, state = stream.next()
            per_step = lengths if task.readout == "all" else None  # the losses' mask
            loss, norm, grads, norms = [math.nan] * K, [math.nan] * K, None, {}
            grad_norms = None  # each member's, in one pass over the gradients
            if s == 0 or s in spec.weights_at:  # before update s + 1
                label = "initial" if s == 0 else f"step {s}"
                for k in range(K):
                    reached = k in members.alive and k not in members.frozen
                    rec.take_weights(
                        k, label, s, members.view(model.params, k) if reached else None
                    )
            # a member whose last update made its weights non-finite has diverged; it
            # leaves the pass (zeroed, so the others' pass runs) and gets loss NaN
            lost = members.lose_nonfinite()
            if len(lost) < len(members.alive):
                with np.errstate(all="ignore"):
                    res = model.forward(x, state, lengths, train=True, rng=drop_rngs,
                                        backend=spec.backend)  # fmt: skip
                    stream.carry(res.state)
                    outs = res.output if stacked else [res.output]
                    d_out, finite = [], []
                    for k in range(K):
                        value, d = loss_fn(outs[k], ys[k], per_step)
                        loss[k] = value if k in members.alive and k not in lost else math.nan
                        # a forward pass that overflowed into the loss's gradient: the member
                        # diverges here, and a zero gradient keeps the others' pass finite
                        ok = k in members.alive and k not in lost and bool(np.isfinite(d).all())
                        d_out.append(d if ok else np.zeros_like(d))
                        finite.append(ok)
                    d_out = np.stack(d_out) if stacked else d_out[0]
                    if any(finite):
                        want = s in diags and want_norms
                        g = model.backward(res, d_out, norms=want, input_grad=False)
                        grads, norms = g.params, g.norms
                        grad_norms = _optim.global_norms(members.stacked(grads))
                    for k in members.alive:
                        if finite[k]:
                            norm[k] = float(grad_norms[k])
            alive = members.alive
            bad = {k for k in alive if not (math.isfinite(loss[k]) and math.isfinite(norm[k]))}
            writing = [k for k in alive if k in bad or s in recorded]
            good = [k for k in writing if k not in bad]
            tests = (_evaluate(model, task, test, loss_fn, spec)
                     if s in evals and good else None)  # fmt: skip
            jac = None
            if s in diags and want_jac and good:
                with np.errstate(all="ignore"):
                    jac = _diag.jacobian_norms(model, x, state, lengths, backend=spec.backend)
                jac = jac.jacobian_norm.values if stacked else jac.jacobian_norm.values[None]
            for k in writing:
                t_loss, t_metric = tests[k] if tests and k not in bad else (math.nan, math.nan)
                snapshots = {}
                if s in diags and k not in bad:
                    for n, a in norms.items():
                        snapshots[n] = _batch_mean(a[k] if stacked else a, T_rec)
                    if jac is not None:
                        snapshots["jacobian_norm"] = _batch_mean(jac[k], T_rec)
                rate = math.nan if k in bad or s == spec.steps else (
                    lr[k] if isinstance(lr, tuple) else lr)  # fmt: skip
                scalars = {"loss": loss[k], "grad_norm_total": norm[k], "test_loss": t_loss,
                           "test_metric": t_metric, "learning_rate": rate}  # fmt: skip
                rec.add(k, s, scalars, snapshots)
            for k in sorted(bad):  # stop the member; keep its weights as they are now
                members.diverge(k, s)
            if stopper is not None and tests:
                for k in good:
                    if stopper.update(k, s, tests[k][0], members.view(model.params, k)):
                        members.stop(k, stopper.weights[k])
            if s == spec.steps or not members.alive:
                break
            if spec.schedule is not None:
                opt.lr = lr
            _update(model, members, opt, grads, spec.clip, spec.clip_value, grad_norms)
            if s == 0:  # the first step compiles on first use: keep it out of the rate and ETA
                bar.reset()
            bar.update(1)
            if s % max(1, min(spec.eval_every, 50)) == 0:
                mean = np.mean([loss[k] for k in members.alive])
                bar.set_postfix(loss=f"{mean:.4g}", refresh=False)
    finally:
        bar.close()
        members.restore()  # undo the updates made after a member diverged
        opt.lr = base_lr

    for s in spec.weights_at:  # snapshots a diverged member never reached
        for k in range(K):
            if s and f"step {s}" not in rec.weights[k]:
                rec.take_weights(k, f"step {s}", s, None)
    final = [spec.steps] * K
    if stopper is not None:  # every member that did not diverge ends with its best weights
        for k in range(K):
            if members.status[k] == "ok" and stopper.weights[k] is not None:
                for n, v in members.view(model.params, k).items():
                    v[...] = stopper.weights[k][n]
                final[k] = stopper.best_step[k]
    for k in range(K):  # the weights it ends with (a diverged member's: as it diverged)
        rec.take_weights(k, "final", final[k], members.view(model.params, k))
    singles = model.unstack() if stacked else [model]
    return [
        rec.dataset(
            k,
            singles[k],
            task,
            spec.record(opt, seeds[k], k),
            members.status[k],
            members.diverged_at[k],
            {} if stopper is None else stopper.attrs(k),
        )  # fmt: skip
        for k in range(K)
    ]
