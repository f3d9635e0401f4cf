"""Vectors of eight floats for compiled loops: explicit SIMD without Numba's vectoriser.

A tiny network's step product, ``(8, 8) @ (8, 8)``, is too short for LLVM's loop
vectoriser (it vectorises a loop 16 iterations at a time), and Numba leaves the SLP
vectoriser off, so written as scalars its eight column sums run one multiply-add at a time.
Here a row of eight consecutive elements is one value of type :class:`Vec` (LLVM
``<8 x double>`` or ``<8 x float>``: one AVX-512 register, two AVX2 registers), so
``out[i, j:j+8] += a[i, k] * b[k, j:j+8]`` is one vector multiply-add::

    acc = vload(out, i, j)
    for k in range(K):
        acc = vfma(a[i, k], vload(b, k, j), acc)
    vstore(out, i, j, acc)

Each lane computes exactly what the scalar loop ``s += a[i, k] * b[k, j]`` computes with
contraction (``llvm.fmuladd``: fused where the CPU has FMA, as the scalar loops are under
``_config.FASTMATH``): the same sums in the same order, so the results are bit for bit
those of scalar code.

``vload`` and ``vstore`` take 2-d C-contiguous arrays (other layouts are a typing error) and
do not check bounds: the caller keeps ``j + 8 <= shape[1]``.

``line_load`` loads a whole cache line (64 bytes: eight doubles or sixteen floats, one
AVX-512 register; ``line_lanes`` of them); ``line_load_n`` and ``line_store_n`` move its first
``n`` lanes only, the rest masked off (read as zero, left unwritten): the packed-panel
products of ``panels.py``.
"""

from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.core.errors import TypingError
from numba.extending import intrinsic, models, register_model

#: lanes of a vector
WIDTH = 8


#: bytes of a cache line, and of the vectors of ``line_load``
LINE = 64


class Vec(types.Type):
    """``width`` consecutive elements of ``dtype`` held as one LLVM vector value."""

    def __init__(self, dtype, width=WIDTH):
        self.dtype, self.width = dtype, width
        super().__init__(name=f"Vec{width}({dtype})")


@register_model(Vec)
class _VecModel(models.PrimitiveModel):
    def __init__(self, dmm, fe_type):
        element = dmm.lookup(fe_type.dtype).get_value_type()
        super().__init__(dmm, fe_type, ir.VectorType(element, fe_type.width))


def _row_pointer(context, builder, arrty, arr, i, j, width=WIDTH):
    """``&arr[i, j]`` as a pointer to a vector (no bounds check)."""
    a = context.make_array(arrty)(context, builder, arr)
    shape = cgutils.unpack_tuple(builder, a.shape)
    strides = cgutils.unpack_tuple(builder, a.strides)
    ptr = cgutils.get_item_pointer2(context, builder, a.data, shape, strides, "C", [i, j])
    vecty = ir.VectorType(context.get_value_type(arrty.dtype), width)
    return builder.bitcast(ptr, vecty.as_pointer())


def _check_row_array(arr, fname):
    if not (isinstance(arr, types.Array) and arr.ndim == 2 and arr.layout == "C"):
        raise TypingError(f"{fname} takes a 2-d C-contiguous array, got {arr}")
    if arr.dtype not in (types.float32, types.float64):
        raise TypingError(f"{fname} takes float32 or float64, got {arr.dtype}")


@intrinsic
def vload(typingctx, arr, i, j):
    """``arr[i, j : j + WIDTH]`` as a :class:`Vec`."""
    _check_row_array(arr, "vload")

    def codegen(context, builder, sig, args):
        ptr = _row_pointer(context, builder, sig.args[0], *args)
        return builder.load(ptr, align=arr.dtype.bitwidth // 8)

    return Vec(arr.dtype)(arr, i, j), codegen


@intrinsic
def vstore(typingctx, arr, i, j, v):
    """``arr[i, j : j + WIDTH] = v``."""
    _check_row_array(arr, "vstore")
    if v != Vec(arr.dtype):
        raise TypingError(f"vstore of {v} into an array of {arr.dtype}")

    def codegen(context, builder, sig, args):
        ptr = _row_pointer(context, builder, sig.args[0], *args[:3])
        builder.store(args[3], ptr, align=arr.dtype.bitwidth // 8)
        return context.get_dummy_value()

    return types.none(arr, i, j, v), codegen


def line_width(dtype):
    """Lanes of a cache line of ``dtype`` (a Numba type): 8 for float64, 16 for float32."""
    return LINE * 8 // dtype.bitwidth


def _lane_mask(builder, width, n):
    """``<width x i1>``: lanes below ``n`` set."""
    i64 = ir.IntType(64)
    lanes = ir.Constant(ir.VectorType(i64, width), list(range(width)))
    n = builder.sext(n, i64) if n.type.width < 64 else n
    splat = builder.insert_element(ir.Constant(lanes.type, ir.Undefined), n, ir.Constant(i64, 0))
    splat = builder.shuffle_vector(
        splat,
        ir.Constant(lanes.type, ir.Undefined),
        ir.Constant(ir.VectorType(ir.IntType(32), width), [0] * width),
    )
    return builder.icmp_signed("<", lanes, splat)


@intrinsic
def line_lanes(typingctx, arr):
    """:func:`line_width` of ``arr``'s dtype, a compile-time constant."""
    _check_row_array(arr, "line_lanes")
    width = line_width(arr.dtype)

    def codegen(context, builder, sig, args):
        return context.get_constant(types.intp, width)

    return types.intp(arr), codegen


@intrinsic
def line_load(typingctx, arr, i, j):
    """``arr[i, j : j + w]`` as a :class:`Vec` of w = :func:`line_width` lanes."""
    _check_row_array(arr, "line_load")
    width = line_width(arr.dtype)

    def codegen(context, builder, sig, args):
        ptr = _row_pointer(context, builder, sig.args[0], *args, width=width)
        return builder.load(ptr, align=arr.dtype.bitwidth // 8)

    return Vec(arr.dtype, width)(arr, i, j), codegen


@intrinsic
def line_load_n(typingctx, arr, i, j, n):
    """``arr[i, j : j + w]`` as a :class:`Vec` of w = :func:`line_width` lanes, of which
    only the first ``n`` (``0 <= n <= w``) are read; the others are zero."""
    _check_row_array(arr, "line_load_n")
    width = line_width(arr.dtype)

    def codegen(context, builder, sig, args):
        ptr = _row_pointer(context, builder, sig.args[0], *args[:3], width=width)
        vecty = ir.VectorType(context.get_value_type(arr.dtype), width)
        mask = _lane_mask(builder, width, args[3])
        fn = cgutils.get_or_insert_function(
            builder.module,
            ir.FunctionType(vecty, [ptr.type, ir.IntType(32), mask.type, vecty]),
            f"llvm.masked.load.v{width}{vecty.element.intrinsic_name}.p0",
        )
        align = ir.Constant(ir.IntType(32), arr.dtype.bitwidth // 8)
        return builder.call(fn, [ptr, align, mask, ir.Constant(vecty, None)])

    return Vec(arr.dtype, width)(arr, i, j, n), codegen


@intrinsic
def line_store_n(typingctx, arr, i, j, v, n):
    """``arr[i, j : j + n] = v[:n]`` for a :class:`Vec` of :func:`line_width` lanes;
    the lanes past ``n`` are not written."""
    _check_row_array(arr, "line_store_n")
    width = line_width(arr.dtype)
    if v != Vec(arr.dtype, width):
        raise TypingError(f"line_store_n of {v} into an array of {arr.dtype}")

    def codegen(context, builder, sig, args):
        ptr = _row_pointer(context, builder, sig.args[0], *args[:3], width=width)
        val = args[3]
        mask = _lane_mask(builder, width, args[4])
        fn = cgutils.get_or_insert_function(
            builder.module,
            ir.FunctionType(ir.VoidType(), [val.type, ptr.type, ir.IntType(32), mask.type]),
            f"llvm.masked.store.v{width}{val.type.element.intrinsic_name}.p0",
        )
        builder.call(fn, [val, ptr, ir.Constant(ir.IntType(32), arr.dtype.bitwidth // 8), mask])
        return context.get_dummy_value()

    return types.none(arr, i, j, v, n), codegen


@intrinsic
def vfma(typingctx, x, v, acc):
    """``acc + x * v`` in every lane (``x`` a scalar), as ``llvm.fmuladd``."""
    if not (isinstance(x, (types.Float, types.Integer)) and isinstance(v, Vec) and acc == v):
        raise TypingError(f"vfma takes a scalar and two vectors, got {x}, {v}, {acc}")

    def codegen(context, builder, sig, args):
        xv, vv, av = args
        vecty = vv.type
        xv = context.cast(builder, xv, sig.args[0], v.dtype)
        i32 = ir.IntType(32)
        splat = builder.insert_element(ir.Constant(vecty, ir.Undefined), xv, ir.Constant(i32, 0))
        splat = builder.shuffle_vector(
            splat,
            ir.Constant(vecty, ir.Undefined),
            ir.Constant(ir.VectorType(i32, v.width), [0] * v.width),
        )
        name = f"llvm.fmuladd.v{v.width}{vecty.element.intrinsic_name}"
        fn = cgutils.get_or_insert_function(
            builder.module, ir.FunctionType(vecty, [vecty] * 3), name
        )
        return builder.call(fn, [splat, vv, av])

    return v(x, v, acc), codegen
