"""Vectorisable elementary functions for ``@njit`` kernels.

The llvmlite that Numba ships has no SVML, so ``np.exp``/``np.tanh``/``math.exp``
inside a kernel become one libm call per element and a loop over hidden units
never vectorises.  The functions here are written in plain arithmetic plus a
few LLVM intrinsics (``fmuladd``, ``rint``, ``copysign``, ``select``, bit casts), and are
inlined into the caller's Numba IR (``inline="always"``), so a loop such as::

    for j in range(n):
        out[j] = sigmoid(a[j])

over contiguous arrays compiles to packed AVX2/AVX-512 code.

Every function accepts a ``float32`` or ``float64`` scalar and returns the same
type; each precision has its own constants and polynomial degree.  Accuracy
(tested in ``tests/test_math.py`` against extended-precision references):
about 1-3 ulp in both precisions over the whole range, including tiny
arguments, saturation, overflow (``exp`` -> ``inf``), gradual underflow, and
``nan``/``inf`` propagation.  ``tanh(-0.0)`` is ``-0.0``.

Called from Python (outside ``@njit``) the names fall back to NumPy; the fast
path exists only in compiled code.

Notes
-----
Because the code is inlined, it is compiled with the *caller's* ``fastmath``
flags.  The order-sensitive steps (Cody-Waite reduction, Horner's rule) use
``llvm.fmuladd`` calls, which ``reassoc``/``contract`` cannot rewrite, so the
results hold with :data:`numrnn.kernels._config.FASTMATH` (tested).  Flags
with ``nnan``/``ninf`` (plain ``fastmath=True``) void the nan/inf guarantees.

In a loop over a 2-D block, take 1-D row views before the inner loop
(``gi = gates[b, :H]``; ``cb = c[b]``).  Indexing ``gates[b, k*H + j]``
directly compiles to packed code too, but LLVM hoists its runtime alias checks
out of the batch loop, over the whole block where the gate columns overlap, so
the scalar fallback runs (``benchmarks/bench_math.py`` shows both).
"""

import math

import numpy as np
from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic, overload, register_jitable

__all__ = ["exp", "sigmoid", "tanh", "dsigmoid_from_y", "dtanh_from_y"]

_inline = register_jitable(inline="always")


# --------------------------------------------------------------------------
# LLVM intrinsics.  Numba has no scalar bit cast, rint or fmuladd; these are
# thin wrappers that the loop vectoriser widens to vector instructions.
# --------------------------------------------------------------------------
def _llvm_call(builder, name, args):
    ty = args[0].type
    fnty = ir.FunctionType(ty, [ty] * len(args))
    fn = cgutils.get_or_insert_function(builder.module, fnty, f"llvm.{name}.{ty.intrinsic_name}")
    return builder.call(fn, args)


def _same_float(*tys):
    return isinstance(tys[0], types.Float) and len(set(tys)) == 1


def _codegen(name):
    return lambda context, builder, sig, args: _llvm_call(builder, name, args)


@intrinsic
def _fmuladd(typingctx, a, b, c):
    """``a*b + c``, fused on FMA hardware (``llvm.fmuladd``).

    Unlike ``a*b + c`` written in Python it is never re-associated by
    fast-math flags, so the error analysis of the callers stays valid.
    """
    if _same_float(a, b, c):
        return a(a, b, c), _codegen("fmuladd")


@intrinsic
def _rint(typingctx, x):
    """Round to nearest integer, ties to even (``vroundpd``)."""
    if _same_float(x):
        return x(x), _codegen("rint")


@intrinsic
def _copysign(typingctx, x, y):
    """Magnitude of `x` with the sign of `y`."""
    if _same_float(x, y):
        return x(x, y), _codegen("copysign")


@intrinsic
def _div(typingctx, a, b):
    """IEEE ``a / b``.  Python's ``/`` in Numba (``error_model="python"``, the
    default) checks for a zero divisor, and that branch blocks vectorisation."""
    if _same_float(a, b):
        return a(a, b), lambda context, builder, sig, args: builder.fdiv(*args)


@intrinsic
def _select(typingctx, cond, a, b):
    """``a if cond else b`` as an LLVM ``select`` (a vector blend).

    Python conditionals inlined into a caller become control flow (and Numba
    warns about their phi variables when inlined into nested loops).
    """
    if isinstance(cond, types.Boolean) and _same_float(a, b):
        return a(cond, a, b), lambda context, builder, sig, args: builder.select(*args)


@intrinsic
def _scale2(typingctx, p, k):
    """``p * 2**k`` for ``p`` in [0.5, 2] and integral float ``k``, ``|k| < 2*emax``.

    The first half of ``k`` is added to the exponent bits of ``p`` (integer
    arithmetic, exact since the intermediate stays normal); the second half is
    one multiplication by 2**(k - k//2), so a result that overflows gives
    ``inf`` and one that underflows rounds once, correctly, to a subnormal or
    zero.  Splitting with two floating multiplications instead would be undone
    by ``reassoc`` (2**k1 * 2**k2 overflows first).
    """
    if not _same_float(p, k):
        return None

    def codegen(context, builder, sig, args):
        y, kf = args
        i32 = ir.IntType(32)
        is64 = y.type == ir.DoubleType()
        ity, bias, mant = (ir.IntType(64), 1023, 52) if is64 else (i32, 127, 23)

        def exponent_bits(kk):
            kk = builder.sext(kk, ity) if is64 else kk
            return builder.shl(kk, ir.Constant(ity, mant))

        ki = builder.fptosi(kf, i32)  # k is small; i32 converts on AVX2 too
        k1 = builder.ashr(ki, ir.Constant(i32, 1))
        k2 = builder.sub(ki, k1)
        y = builder.bitcast(builder.add(builder.bitcast(y, ity), exponent_bits(k1)), y.type)
        two_k2 = builder.add(exponent_bits(k2), ir.Constant(ity, bias << mant))
        return builder.fmul(y, builder.bitcast(two_k2, y.type))

    return p(p, k), codegen


@_inline
def _horner(x, c):
    """Evaluate ``c[0]*x**(n-1) + ... + c[n-1]`` (constant tuple, fully unrolled)."""
    p = c[0]
    for i in range(1, len(c)):
        p = _fmuladd(p, x, c[i])
    return p


# --------------------------------------------------------------------------
# Per-precision implementations.
# --------------------------------------------------------------------------
def _build(ft, ln2_hi, ln2_lo, exp_deg, x_lo, x_hi, tanh_p, tanh_q):
    """Jitable implementations whose constants all have float type ``ft``.

    Parameters
    ----------
    ft : {np.float32, np.float64}
    ln2_hi, ln2_lo : float
        ln 2 = ln2_hi + ln2_lo, ``ln2_hi`` with few enough bits that
        ``k * ln2_hi`` is exact for every reachable ``k`` (Cody & Waite, 1980).
    exp_deg : int
        Degree of the Taylor polynomial of ``exp`` on ``|r| <= ln2/2``.
    x_lo, x_hi : float
        Clamp for the argument of ``exp``; beyond it the result is 0 / inf
        anyway, inside it ``k`` stays in the range of :func:`_scale2`.
    tanh_p, tanh_q : tuple of float
        Cephes rational ``tanh(z) = z + z*s*P(s)/Q(s)``, ``s = z*z``, for
        ``|z| < 0.625`` (Q monic, leading 1 included here).
    """
    zero, one, two_neg = ft(0.0), ft(1.0), ft(-2.0)
    log2e = ft(1.0 / math.log(2.0))
    neg_ln2_hi = ft(-ln2_hi)
    neg_ln2_lo = ft(-ln2_lo)
    lo, hi = ft(x_lo), ft(x_hi)
    # Taylor coefficients 1/n!, highest first.  On |r| <= ln2/2 the truncation
    # error r**(d+1)/(d+1)! is 4e-18 for d=13 (float64) and 5e-9 for d=7
    # (float32), far below half an ulp.
    exp_c = tuple(ft(1.0 / math.factorial(n)) for n in range(exp_deg, -1, -1))
    tp = tuple(ft(c) for c in tanh_p)
    tq = tuple(ft(c) for c in tanh_q)
    tanh_cut = ft(0.625)

    @_inline
    def exp_(x):
        # NaN compares false, so it is clamped to `lo` here (keeping the float ->
        # int conversion defined) and restored at the end.
        xc = _select(x > lo, x, lo)
        xc = _select(xc < hi, xc, hi)
        k = _rint(xc * log2e)
        # Cody-Waite: k*ln2_hi is exact and so is the subtraction (Sterbenz).
        r = _fmuladd(k, neg_ln2_hi, xc)
        r = _fmuladd(k, neg_ln2_lo, r)
        y = _scale2(_horner(r, exp_c), k)
        return _select(x == x, y, x)

    @_inline
    def sigmoid_(x):
        # e = exp(-|x|) <= 1 never overflows.  For x < 0, sigmoid = e/(1+e):
        # keeps full relative accuracy down to the subnormal range.
        e = exp_(-abs(x))
        s = _div(one, one + e)
        return _select(x >= zero, s, e * s)

    @_inline
    def tanh_(x):
        z = abs(x)
        s = z * z
        e = exp_(two_neg * z)
        # One division for both branches, so the vectorised blend pays once:
        # small |x|: z*(Q + s*P)/Q (keeps relative accuracy as z -> 0);
        # large |x|: (1 - e)/(1 + e) with e = exp(-2|x|), which saturates to
        # exactly 1 and cannot overflow.
        q = _horner(s, tq)
        small = z < tanh_cut
        num = _select(small, z * _fmuladd(s, _horner(s, tp), q), one - e)
        den = _select(small, q, one + e)
        return _copysign(_div(num, den), x)

    @_inline
    def dsigmoid_(y):
        return y * (one - y)

    @_inline
    def dtanh_(y):
        # (1-y)(1+y) == 1 - y*y, but exact subtraction (Sterbenz) near |y| = 1.
        return (one - y) * (one + y)

    return {
        "exp": exp_,
        "sigmoid": sigmoid_,
        "tanh": tanh_,
        "dsigmoid_from_y": dsigmoid_,
        "dtanh_from_y": dtanh_,
    }


# Cephes tanh.c / tanhf.c (S. L. Moshier): peak relative error 2.5e-16
# (double) and 1.3e-7 (single) on |x| < 0.625, measured in their test suites.
_IMPLS = {
    types.float64: _build(
        np.float64,
        # fdlibm e_exp.c ln2HI (32 significant bits) and ln2LO.
        ln2_hi=float.fromhex("0x1.62e42feep-1"),
        ln2_lo=float.fromhex("0x1.a39ef35793c76p-33"),
        exp_deg=13,
        x_lo=-760.0,
        x_hi=720.0,
        tanh_p=(-9.64399179425052238628e-1, -9.92877231001918586564e1, -1.61468768441708447952e3),
        tanh_q=(1.0, 1.12811678491632931402e2, 2.23548839060100448583e3, 4.84406305325125486048e3),
    ),
    types.float32: _build(
        np.float32,
        # 16 significant bits; ln2_lo needs only float32 accuracy here.
        ln2_hi=float.fromhex("0x1.62e4p-1"),
        ln2_lo=math.log(2.0) - float.fromhex("0x1.62e4p-1"),
        exp_deg=7,
        x_lo=-110.0,
        x_hi=100.0,
        tanh_p=(
            -5.70498872745e-3,
            2.06390887954e-2,
            -5.37397155531e-2,
            1.33314422036e-1,
            -3.33332819422e-1,
        ),
        tanh_q=(1.0,),
    ),
}


# --------------------------------------------------------------------------
# Public names: NumPy fallbacks in Python, overloaded with the fast versions
# in compiled code.
# --------------------------------------------------------------------------
def exp(x):
    """Exponential ``e**x``.

    Parameters
    ----------
    x : float32 or float64

    Returns
    -------
    Same type as `x`; ``inf`` on overflow, gradual underflow to 0.
    """
    return np.exp(x)


def sigmoid(x):
    """Logistic function ``1 / (1 + exp(-x))``, accurate for both signs."""
    return 1.0 / (1.0 + np.exp(-x))


def tanh(x):
    """Hyperbolic tangent; exactly ``+-1`` once saturated, ``tanh(-0.0) == -0.0``."""
    return np.tanh(x)


def dsigmoid_from_y(y):
    """Derivative of the sigmoid from its output: ``y * (1 - y)``."""
    return y * (1 - y)


def dtanh_from_y(y):
    """Derivative of tanh from its output: ``1 - y*y``, as ``(1-y)*(1+y)``."""
    return (1 - y) * (1 + y)


def _register(stub):
    @overload(stub, inline="always")
    def _ol(x):
        impls = _IMPLS.get(x)
        if impls is not None:
            return impls[stub.__name__]

    return _ol


for _stub in (exp, sigmoid, tanh):
    _register(_stub)


# The derivative stubs take `y`, so they need their own overload signature.
def _register_y(stub):
    @overload(stub, inline="always")
    def _ol(y):
        impls = _IMPLS.get(y)
        if impls is not None:
            return impls[stub.__name__]

    return _ol


for _stub in (dsigmoid_from_y, dtanh_from_y):
    _register_y(_stub)
