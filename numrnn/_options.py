"""Run-time options, set globally or for a ``with`` block: ``nr.set_options(...)``.

Compile-time constants of the kernels are in :mod:`numrnn.kernels._config` (Numba freezes
them into the compiled code); what can change between calls is here.
"""

from ._checks import check_bool, check_choice, check_positive_int

#: name -> (default, check, description)
_SPECS = {
    "eval_chunk": (
        64,
        check_positive_int,
        "sequences per forward pass when training evaluates on a test set: pieces whose "
        "trajectories stay in cache, the same for any ensemble size, so that a member's "
        "test loss is its own bit for bit",
    ),
    "compile_notice": (
        True,
        check_bool,
        "print a one-line notice when a cell's kernels compile (first use on a machine)",
    ),
    "compile_ahead": (
        True,
        check_bool,
        "while a cell's forward kernels compile (first use on a machine), compile its "
        "backward kernels in a second process, where two cores are free",
    ),
    "keep_heap": (
        True,
        check_bool,
        "keep freed blocks of up to 32 MiB in glibc's heap for the next pass, instead of "
        "handing them back to the system to be page-faulted in again "
        "(numrnn.memory.keep_freed_memory, applied at the next pass; glibc only)",
    ),
    "products": (
        "auto",
        lambda name, v: check_choice(name, v, ("auto", "panels", "blas")),
        "how the CPU kernels multiply matrices larger than a small network's step: 'panels' "
        "(numrnn's own register-tiled kernel over packed panels, for CPUs with 64-byte "
        "vectors), 'blas' (the BLAS NumPy and scipy load), or 'auto' (panels where the CPU "
        "has AVX-512); both give the same results to rounding",
    ),
    "cuda_path": (
        "auto",
        lambda name, v: check_choice(name, v, ("auto", "persistent", "stepwise")),
        "how the CUDA backend runs a layer: 'auto' (persistent kernels while the recurrent "
        "weights fit in shared memory, per-step launches beyond), or either path always",
    ),
}

OPTIONS = {name: spec[0] for name, spec in _SPECS.items()}


def get_option(name):
    """The current value of option ``name``.

    Parameters
    ----------
    name : {"eval_chunk", "compile_notice", "compile_ahead", "keep_heap", "products", "cuda_path"}
        An option of :class:`set_options`; another name raises ``ValueError`` listing them.

    Returns
    -------
    object
        The value in force.

    Examples
    --------
    >>> import numrnn as nr
    >>> nr.get_option("cuda_path")
    'auto'
    """
    return OPTIONS[check_choice("option", name, tuple(_SPECS))]


class set_options:  # noqa: N801 - used like a function, as xarray.set_options
    """Set options globally, or for a ``with`` block (restored on exit, also on error).

    Parameters
    ----------
    **options
        Any of:

        ``eval_chunk`` : int > 0, default 64
            Sequences per forward pass when :func:`numrnn.train` evaluates on a test set:
            pieces whose trajectories stay in cache, the same for any ensemble size, so
            that a member's test loss is its own bit for bit.
        ``compile_notice`` : bool, default True
            Print a one-line notice when a cell's kernels compile (their first use on a
            machine; cached afterwards).
        ``compile_ahead`` : bool, default True
            While a cell's forward kernels compile (their first use on a machine),
            compile its backward kernels in a second process, where two cores are free
            (:mod:`numrnn.nn.ahead`).
        ``keep_heap`` : bool, default True
            Keep freed blocks of up to 32 MiB in glibc's heap, and up to 64 MiB free at
            its top, for the next pass, instead of handing them back to the system to be
            page-faulted in again (:func:`numrnn.memory.keep_freed_memory`, for the whole
            process, applied at the next pass; turned off before a process's first pass,
            glibc is left alone; glibc only).
        ``products`` : {"auto", "panels", "blas"}, default "auto"
            How the CPU kernels multiply matrices above a small network's step:
            "panels" runs numrnn's own register-tiled kernel over packed copies of the
            operands (``numrnn.kernels.panels``; made for CPUs with 64-byte vectors,
            AVX-512), "blas" the BLAS that NumPy and scipy load, "auto" the panels where
            the CPU has AVX-512F. The two differ only in rounding. The kernels are
            compiled (and cached) for each of the two apart: the first pass after a
            change may compile them again.
        ``cuda_path`` : {"auto", "persistent", "stepwise"}, default "auto"
            How the CUDA backend runs a layer: "auto" runs the persistent kernels while
            the recurrent weights fit in shared memory and per-step launches beyond;
            the other two force one path (see :doc:`/guide/backends`).

    Raises
    ------
    ValueError
        For an unknown option (listing the known ones) or an invalid value.

    Examples
    --------
    >>> import numrnn as nr
    >>> with nr.set_options(eval_chunk=16):
    ...     nr.get_option("eval_chunk")
    16
    >>> nr.get_option("eval_chunk")
    64
    """

    def __init__(self, **options):
        checked = {}
        for name, value in options.items():
            check_choice("option", name, tuple(_SPECS))
            checked[name] = _SPECS[name][1](name, value)
        self.saved = {name: OPTIONS[name] for name in checked}
        OPTIONS.update(checked)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        OPTIONS.update(self.saved)
