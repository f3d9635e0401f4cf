"""LAPACK's Householder QR and its orthogonal factor's product, for compiled kernels.

The Lyapunov QR iteration (``jacobian.py``) factors a product Z = Q R every k steps and
multiplies the next step's Jacobian by Q. Numba's ``np.linalg.qr`` forms Q explicitly
(``?orgqr``, about as costly as the factorization) in new arrays, and the next step then
multiplies by it. Here Q stays as LAPACK's Householder reflectors, and the next step
applies them to the Jacobian (``?ormqr``) instead of a matrix product: at S = 200, float64,
one core, the factorization 0.44 ms and the product with the reflectors 0.55 ms, against
0.92 ms for Numba's QR and 0.30 ms for the product with the explicit Q. (For a few
exponents, n << S, the reflectors applied to all of the S x S Jacobian cost 4 S^2 n, twice
the product with the thin Q; :func:`form_q` forms that instead.)

LAPACK reads matrices column-major: a C-contiguous (n, S) array is, to LAPACK, the S x n
matrix of its transpose. :func:`geqrf` therefore takes Z as its transpose ``zt``.

The routines are scipy's (``scipy.linalg.cython_lapack``, the LAPACK that Numba's own
``np.linalg`` calls), declared to Numba as external functions by name: compiled code
refers to the names only, so the kernels that call them cache on disk like any other.
:func:`register` binds the names to the routines' addresses; it must run in a process
before a kernel that calls them is compiled or loaded from the cache.
"""

import numpy as np
from numba import types

from ._compiling import callee

#: the routines used, by their LAPACK names; each is bound to the name ``numrnn_<name>``
ROUTINES = ("dgeqrf", "sgeqrf", "dormqr", "sormqr", "dorgqr", "sorgqr")

_registered = []


def register():
    """Bind the names of :data:`ROUTINES` to scipy's LAPACK (once per process)."""
    if not _registered:
        import llvmlite.binding as ll
        from numba.extending import get_cython_function_address

        for name in ROUTINES:
            address = get_cython_function_address("scipy.linalg.cython_lapack", name)
            ll.add_symbol(f"numrnn_{name}", address)
        _registered.append(True)


def _external(name, n_args):
    # Fortran's calling convention: every argument by pointer (ints are 32-bit in scipy's
    # LAPACK; its Cython wrappers take care of the hidden lengths of character arguments)
    return types.ExternalFunction(f"numrnn_{name}", types.void(*[types.voidptr] * n_args))


_dgeqrf, _sgeqrf = _external("dgeqrf", 8), _external("sgeqrf", 8)
_dormqr, _sormqr = _external("dormqr", 13), _external("sormqr", 13)
_dorgqr, _sorgqr = _external("dorgqr", 9), _external("sorgqr", 9)


@callee()
def workspace_size(S, n):
    """The length of the ``work`` array :func:`geqrf` and :func:`apply_q` take for an S x n
    product: room for LAPACK's blocked algorithms (64 columns at a time, and the block
    reflector's 65 x 64 triangle)."""
    return 64 * max(S, n) + 65 * 64


@callee()
def geqrf(zt, tau, work):
    """Householder QR of the S x n matrix Z (S >= n), given as its transpose ``zt`` (n, S),
    C-contiguous, in place: afterwards ``zt[j, i]`` is R[i, j] for i <= j (so ``zt[i, i]``
    is R's diagonal) and the reflectors lie below, with their scales in ``tau`` (n,).

    Returns LAPACK's ``info`` (0: success; -i: argument i was invalid).
    """
    n, S = zt.shape
    ints = np.empty(4, np.int32)  # m, n (also lda = m), lwork, info
    ints[0], ints[1], ints[2], ints[3] = S, n, work.size, 0
    m_, n_, lw, info = ints[0:].ctypes, ints[1:].ctypes, ints[2:].ctypes, ints[3:].ctypes
    if zt.itemsize == 8:
        _dgeqrf(m_, n_, zt.ctypes, m_, tau.ctypes, work.ctypes, lw, info)
    else:
        _sgeqrf(m_, n_, zt.ctypes, m_, tau.ctypes, work.ctypes, lw, info)
    return ints[3]


@callee()
def apply_q(zt, tau, J, work):
    """``J := J @ Q`` in place, Q the S x S orthogonal factor whose first n columns are the
    thin Q of :func:`geqrf`'s ``zt`` and ``tau``; J (S, S) C-contiguous. The first n
    columns of the result are J times the thin Q.

    Returns LAPACK's ``info``.
    """
    n, S = zt.shape
    # LAPACK sees J's memory as J^T and computes Q^T J^T = (J Q)^T, which the same memory
    # holds as J Q read row by row
    ints = np.empty(4, np.int32)  # m = n = lda = ldc (S), k, lwork, info
    ints[0], ints[1], ints[2], ints[3] = S, n, work.size, 0
    chars = np.empty(2, np.uint8)
    chars[0], chars[1] = 76, 84  # "L", "T"
    S_, k_, lw, info = ints[0:].ctypes, ints[1:].ctypes, ints[2:].ctypes, ints[3:].ctypes
    side, trans = chars[0:].ctypes, chars[1:].ctypes
    if J.itemsize == 8:
        _dormqr(side, trans, S_, S_, k_, zt.ctypes, S_, tau.ctypes, J.ctypes, S_, work.ctypes,
                lw, info)  # fmt: skip
    else:
        _sormqr(side, trans, S_, S_, k_, zt.ctypes, S_, tau.ctypes, J.ctypes, S_, work.ctypes,
                lw, info)  # fmt: skip
    return ints[3]


@callee()
def form_q(zt, tau, work):
    """The thin Q (S x n) of :func:`geqrf`'s ``zt`` and ``tau``, in place of ``zt``, again
    as its transpose: afterwards ``zt`` (n, S) is Q^T.

    Returns LAPACK's ``info``.
    """
    n, S = zt.shape
    ints = np.empty(4, np.int32)  # m = lda (S), n = k, lwork, info
    ints[0], ints[1], ints[2], ints[3] = S, n, work.size, 0
    S_, n_, lw, info = ints[0:].ctypes, ints[1:].ctypes, ints[2:].ctypes, ints[3:].ctypes
    if zt.itemsize == 8:
        _dorgqr(S_, n_, n_, zt.ctypes, S_, tau.ctypes, work.ctypes, lw, info)
    else:
        _sorgqr(S_, n_, n_, zt.ctypes, S_, tau.ctypes, work.ctypes, lw, info)
    return ints[3]
