"""Vectorisable elementary functions for ``@njit`` kernels.

The llvmlite that Numba ships has no SVML, so ``np.exp``/``np.tanh``/``math.exp``
inside a kernel become one libm call per element and a loop over hidden units
never vectorises.  ``exp``, ``sigmoid`` and ``tanh`` here are written directly as LLVM
IR (plain arithmetic, ``fmuladd``, ``rint``, ``copysign``, ``select``, bit casts) and
emitted into the caller's code, so a loop such as::

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
The IR carries no fast-math flags, so the caller's ``reassoc``/``contract`` cannot
rewrite it (the Cody-Waite reduction and Horner's rule depend on their order), and the
results hold with :data:`numrnn.kernels._config.FASTMATH` (tested).  The derivatives
``dsigmoid_from_y``/``dtanh_from_y`` are two operations each, inlined into the caller's
Numba IR.

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


# --------------------------------------------------------------------------
# Per-precision constants.
# --------------------------------------------------------------------------
def _constants(ft, ln2_hi, ln2_lo, exp_deg, x_lo, x_hi, tanh_p, tanh_q):
    """The constants of one precision, each rounded to float type ``ft``.

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
        anyway, inside it ``k`` stays in the range of :meth:`_Emitter.scale2`.
    tanh_p, tanh_q : tuple of float
        Cephes rational ``tanh(z) = z + z*s*P(s)/Q(s)``, ``s = z*z``, for
        ``|z| < 0.625`` (Q monic, leading 1 included here).
    """

    def c(v):
        return float(ft(v))

    return {
        "log2e": c(1.0 / math.log(2.0)),
        "neg_ln2_hi": c(-ln2_hi),
        "neg_ln2_lo": c(-ln2_lo),
        "lo": c(x_lo),
        "hi": c(x_hi),
        # Taylor coefficients 1/n!, highest first.  On |r| <= ln2/2 the truncation
        # error r**(d+1)/(d+1)! is 4e-18 for d=13 (float64) and 5e-9 for d=7
        # (float32), far below half an ulp.
        "exp_c": tuple(c(1.0 / math.factorial(n)) for n in range(exp_deg, -1, -1)),
        "tanh_p": tuple(map(c, tanh_p)),
        "tanh_q": tuple(map(c, tanh_q)),
        "tanh_cut": c(0.625),
        "ft": ft,
    }


# Cephes tanh.c / tanhf.c (S. L. Moshier): peak relative error 2.5e-16
# (double) and 1.3e-7 (single) on |x| < 0.625, measured in their test suites.
_CONSTANTS = {
    types.float64: _constants(
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
    types.float32: _constants(
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
# The functions, written as LLVM IR.  Written in Numba's Python instead (inlined
# overloads), their typing and lowering at every use cost about 0.6 s of each cold
# compile of a cell's forward kernel; as IR they are one call for Numba to type.
# The IR has no fast-math flags: the caller's ``reassoc``/``contract`` cannot rewrite
# these steps, whatever flags the caller compiles with.
# --------------------------------------------------------------------------
class _Emitter:
    """Emits the IR of exp, sigmoid and tanh of one precision into ``builder``."""

    def __init__(self, builder, constants):
        self.b = builder
        self.k = constants
        self.ty = ir.DoubleType() if constants["ft"] is np.float64 else ir.FloatType()

    def const(self, name_or_value):
        v = self.k[name_or_value] if isinstance(name_or_value, str) else name_or_value
        return ir.Constant(self.ty, v)

    def call(self, name, *args):
        """``llvm.<name>`` on floats of this precision (``fmuladd``, ``rint``, ...)."""
        fnty = ir.FunctionType(self.ty, [self.ty] * len(args))
        fn = cgutils.get_or_insert_function(
            self.b.module, fnty, f"llvm.{name}.{self.ty.intrinsic_name}"
        )
        return self.b.call(fn, args)

    def select(self, op, a, bound, x, y):
        """``x if a <op> bound else y`` (ordered comparison: False for NaN), a blend."""
        return self.b.select(self.b.fcmp_ordered(op, a, bound), x, y)

    def horner(self, x, coeffs):
        """``c[0]*x**(n-1) + ... + c[n-1]`` by ``fmuladd``, which reassociation cannot
        reorder."""
        p = self.const(coeffs[0])
        for c in coeffs[1:]:
            p = self.call("fmuladd", p, x, self.const(c))
        return p

    def scale2(self, p, kf):
        """``p * 2**k`` for ``p`` in [0.5, 2] and integral float ``k``, ``|k| < 2*emax``.

        The first half of ``k`` is added to the exponent bits of ``p`` (integer
        arithmetic, exact since the intermediate stays normal); the second half is
        one multiplication by 2**(k - k//2), so a result that overflows gives
        ``inf`` and one that underflows rounds once, correctly, to a subnormal or
        zero.
        """
        b = self.b
        i32 = ir.IntType(32)
        is64 = self.ty == ir.DoubleType()
        ity, bias, mant = (ir.IntType(64), 1023, 52) if is64 else (i32, 127, 23)

        def exponent_bits(kk):
            kk = b.sext(kk, ity) if is64 else kk
            return b.shl(kk, ir.Constant(ity, mant))

        ki = b.fptosi(kf, i32)  # k is small; i32 converts on AVX2 too
        k1 = b.ashr(ki, ir.Constant(i32, 1))
        k2 = b.sub(ki, k1)
        y = b.bitcast(b.add(b.bitcast(p, ity), exponent_bits(k1)), self.ty)
        two_k2 = b.add(exponent_bits(k2), ir.Constant(ity, bias << mant))
        return b.fmul(y, b.bitcast(two_k2, self.ty))

    def exp(self, x):
        b = self.b
        # NaN compares false, so it is clamped to `lo` here (keeping the float ->
        # int conversion defined) and restored at the end.
        xc = self.select(">", x, self.const("lo"), x, self.const("lo"))
        xc = self.select("<", xc, self.const("hi"), xc, self.const("hi"))
        k = self.call("rint", b.fmul(xc, self.const("log2e")))
        # Cody-Waite: k*ln2_hi is exact and so is the subtraction (Sterbenz).
        r = self.call("fmuladd", k, self.const("neg_ln2_hi"), xc)
        r = self.call("fmuladd", k, self.const("neg_ln2_lo"), r)
        y = self.scale2(self.horner(r, self.k["exp_c"]), k)
        return self.select("==", x, x, y, x)

    def sigmoid(self, x):
        b = self.b
        one = self.const(1.0)
        # e = exp(-|x|) <= 1 never overflows.  For x < 0, sigmoid = e/(1+e):
        # keeps full relative accuracy down to the subnormal range.
        e = self.exp(b.fneg(self.call("fabs", x)))
        s = b.fdiv(one, b.fadd(one, e))
        return self.select(">=", x, self.const(0.0), s, b.fmul(e, s))

    def tanh(self, x):
        b = self.b
        one = self.const(1.0)
        z = self.call("fabs", x)
        s = b.fmul(z, z)
        e = self.exp(b.fmul(self.const(-2.0), z))
        # One division for both branches, so the vectorised blend pays once:
        # small |x|: z*(Q + s*P)/Q (keeps relative accuracy as z -> 0);
        # large |x|: (1 - e)/(1 + e) with e = exp(-2|x|), which saturates to
        # exactly 1 and cannot overflow.
        q = self.horner(s, self.k["tanh_q"])
        small = b.fcmp_ordered("<", z, self.const("tanh_cut"))
        poly = b.fmul(z, self.call("fmuladd", s, self.horner(s, self.k["tanh_p"]), q))
        num = b.select(small, poly, b.fsub(one, e))
        den = b.select(small, q, b.fadd(one, e))
        return self.call("copysign", b.fdiv(num, den), x)


def _ir_function(name):
    """An intrinsic computing :class:`_Emitter`'s ``name`` of a float32/float64 scalar."""

    def typer(typingctx, x):
        if x in _CONSTANTS:

            def codegen(context, builder, sig, args):
                return getattr(_Emitter(builder, _CONSTANTS[x]), name)(args[0])

            return x(x), codegen

    typer.__name__ = f"_{name}_ir"
    return intrinsic(typer)


_IR = {name: _ir_function(name) for name in ("exp", "sigmoid", "tanh")}


def _derivatives(ft):
    one = ft(1.0)

    @register_jitable(inline="always")
    def dsigmoid_(y):
        return y * (one - y)

    @register_jitable(inline="always")
    def dtanh_(y):
        # (1-y)(1+y) == 1 - y*y, but exact subtraction (Sterbenz) near |y| = 1.
        return (one - y) * (one + y)

    return {"dsigmoid_from_y": dsigmoid_, "dtanh_from_y": dtanh_}


_DERIVATIVES = {ty: _derivatives(c["ft"]) for ty, c in _CONSTANTS.items()}


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
    fn = _IR[stub.__name__]

    @overload(stub, inline="always")
    def _ol(x):
        if x in _CONSTANTS:
            return lambda x: fn(x)

    return _ol


for _stub in (exp, sigmoid, tanh):
    _register(_stub)


# The derivative stubs take `y`, so they need their own overload signature.
def _register_y(stub):
    @overload(stub, inline="always")
    def _ol(y):
        impls = _DERIVATIVES.get(y)
        if impls is not None:
            return impls[stub.__name__]

    return _ol


for _stub in (dsigmoid_from_y, dtanh_from_y):
    _register_y(_stub)
