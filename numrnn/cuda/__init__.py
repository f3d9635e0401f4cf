"""CUDA twins of :mod:`numrnn.kernels`: same names, signatures and array contracts
(every array with the leading member axis K of ``numrnn/kernels/rnn.py``).

``kernels()`` returns the namespace ``numrnn.nn.cells`` calls (``rnn_forward``,
``rnn_backward``, ``lstm_forward``, ... : ``<cell>_forward`` lives in the module ``<cell>``);
each takes and returns NumPy arrays, moving its inputs to the device once per call (never
per step) and its results back once. Nothing here imports ``numba.cuda`` until
``kernels()`` is called, so ``import numrnn`` never needs a GPU or ``numba-cuda``.

Two paths, chosen per call inside each function
-----------------------------------------------
A call runs the **persistent** kernel when its recurrent weights fit in a block's shared
memory and the **per-step** launches otherwise (``_common.plan``). The option
``cuda_path`` (``nr.set_options(cuda_path="persistent")``; ``"auto"``, ``"persistent"``,
``"stepwise"``) overrides the choice; the tests set it to
run every cell through both. Forward and BPTT choose on their own (their shared buffers
differ slightly), and both paths give the same numbers.

Persistent kernels, for many small networks (Diamos et al. 2016):

* One thread block per (sequence, member): a 2-D grid, ``blockIdx.x`` the batch row and
  ``blockIdx.y`` the ensemble member (K = 1 for a single network). The **whole time loop
  runs inside one launch**, with ``cuda.syncthreads()`` between the phases of a step.
  An ensemble of K small networks over a batch of B sequences is one launch of B*K
  blocks, which is what fills a GPU with small layers.
* Threads loop over gate rows (``k = tid, tid + nt, ...``) for the matrix-vector
  product and over hidden units for the pointwise cell update; ``nt`` is the number of
  gate rows (forward) or hidden units (BPTT), capped at ``MAX_THREADS`` and rounded to
  whole warps. A thread owns the same units at every step, so its own state (LSTM's c,
  BPTT's dL/dc) never needs sharing.
* Dynamic shared memory holds h_{t-1} (or dL/dh_t), the gate pre-activations, a
  reduction scratch for the gradient norms and the block's member's recurrent weights,
  staged once per launch. The limit is the 48 KiB a block gets without an opt-in
  (``_common.SHARED_BYTES``): in float32 an LSTM's weights fit up to H = 53 (4H*H
  weights), a GRU's up to H = 62, an Elman RNN's up to H = 108; in float64 up to H = 37,
  43 and 76. (With ``cuda_path="persistent"`` larger weights are read from global memory
  by the same kernel, correct but slow: one block per sequence leaves most of the GPU
  idle and re-reads W_hh from L2 every step.)

Per-step launches, for hidden sizes beyond that (cuDNN's design):

* Each step is a batched tiled matrix product over all (member, active row) pairs for
  the recurrent term, ``h_{t-1} @ W_hh.T`` forward and ``dgates @ W_hh`` in BPTT
  (``_common.matmul_nn``: grid z = member, TILE x TILE tiles; the GRU's reset-before
  form needs a second product with W_hn once r is known), then a pointwise cell kernel,
  one block per (active row, member), applying the gate nonlinearities and state update
  or computing the gate gradients and the norms' block reductions.
* Only the ``batch_sizes[t]`` active rows (a prefix; ``batch_sizes`` is a host array) are
  launched over, so rows past a sequence's end keep the zero/NaN fill and dL/dh passes
  through them unchanged, as on the CPU. Inputs go to the device once per call and
  results come back once per call; the launches of the time loop are asynchronous on the
  default stream, with no host synchronisation inside it.

Shared by both paths: each cell's pointwise math is written once, as device functions
per hidden unit (``_unit_forward``/``_unit_backward`` in each cell module, called by the
persistent kernel's pointwise phase and by the per-step cell kernel). Weight gradients
``dW_hh = sum_t dgates_t^T h_{t-1}``, ``dW_ih = sum_t dgates_t^T x_t`` and the biases'
follow BPTT on the device, for all members in one launch each (``_common.weight_grads``:
a tiled product ``matmul_tn`` with grid z = member, and a column sum). Every kernel is
compiled lazily per dtype (float32 kernels never promote to float64).

Testing without a GPU: set ``NUMBA_ENABLE_CUDASIM=1`` before Numba is imported and the
same kernels run on Numba's CUDA simulator (slow; ``tests/test_cuda.py`` does this in a
subprocess).
"""

import os

from ..kernels import Namespace

__all__ = ["kernels", "is_available", "unavailable_reason"]

_HINT = (
    "Install the CUDA target with `pip install numrnn[cuda]` (the numba-cuda package) on a "
    "machine with an NVIDIA GPU and driver, or set NUMBA_ENABLE_CUDASIM=1 before Numba is "
    "imported to run the CUDA kernels on Numba's (slow) CPU simulator."
)


def unavailable_reason():
    """Why the CUDA backend cannot run here, or None when it can (a GPU or the simulator).

    Returns
    -------
    str or None
        What is missing: ``numba.cuda`` (numba-cuda not installed), a usable driver, or a
        GPU.

    Examples
    --------
    >>> import numrnn as nr
    >>> reason = nr.cuda.unavailable_reason()
    >>> reason is None or isinstance(reason, str)
    True
    """
    try:
        from numba import cuda
    except ImportError as e:  # Numba versions without the built-in target, and no numba-cuda
        return f"numba.cuda cannot be imported (numba-cuda not installed?): {e}"
    if cuda.is_available():  # True on the simulator too
        return None
    try:
        n = len(cuda.gpus)
    except Exception as e:  # CudaSupportError: no driver library, or driver init failed
        first = " ".join(str(e).split())
        return f"no usable CUDA driver ({first})"
    if n == 0:
        return "a CUDA driver was found but no GPU"
    return "CUDA is present but numba.cuda reports it unusable"


def is_available():
    """True when :func:`kernels` will succeed.

    Returns
    -------
    bool

    Examples
    --------
    >>> import numrnn as nr
    >>> nr.cuda.is_available() == (nr.cuda.unavailable_reason() is None)
    True
    """
    return unavailable_reason() is None


def kernels():
    """The CUDA kernels by name (``lstm_forward``, ...), like ``numrnn.nn.cells.kernels("cpu")``.

    Returns
    -------
    Namespace
        The kernels by name; each takes and returns NumPy arrays.

    Raises
    ------
    RuntimeError
        Naming what is missing (numba-cuda, the driver, a GPU) and how to run on the
        simulator instead.

    Examples
    --------
    >>> import numrnn as nr
    >>> k = nr.cuda.kernels() if nr.cuda.is_available() else None  # else RuntimeError
    >>> k is None or callable(k.lstm_forward)
    True
    """
    reason = unavailable_reason()
    if reason is not None:
        sim = os.environ.get("NUMBA_ENABLE_CUDASIM", "")
        extra = (
            f" (NUMBA_ENABLE_CUDASIM={sim!r} is set, but Numba was imported before it was)"
            if sim not in ("", "0")
            else ""
        )
        raise RuntimeError(f"The CUDA backend is unavailable: {reason}{extra}. {_HINT}")
    return Namespace(__name__)
