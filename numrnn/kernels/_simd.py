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
"""

from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.core.errors import TypingError
from numba.extending import intrinsic, models, register_model

#: lanes of a vector
WIDTH = 8


class Vec(types.Type):
    """``WIDTH`` consecutive elements of ``dtype`` held as one LLVM vector value."""

    def __init__(self, dtype):
        self.dtype = dtype
        super().__init__(name=f"Vec{WIDTH}({dtype})")


@register_model(Vec)
class _VecModel(models.PrimitiveModel):
    def __init__(self, dmm, fe_type):
        element = dmm.lookup(fe_type.dtype).get_value_type()
        super().__init__(dmm, fe_type, ir.VectorType(element, WIDTH))


def _row_pointer(context, builder, arrty, arr, i, j):
    """``&arr[i, j]`` as a pointer to a vector (no bounds check)."""
    a = context.make_array(arrty)(context, builder, arr)
    shape = cgutils.unpack_tuple(builder, a.shape)
    strides = cgutils.unpack_tuple(builder, a.strides)
    ptr = cgutils.get_item_pointer2(context, builder, a.data, shape, strides, "C", [i, j])
    vecty = ir.VectorType(context.get_value_type(arrty.dtype), WIDTH)
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
            ir.Constant(ir.VectorType(i32, WIDTH), [0] * WIDTH),
        )
        name = f"llvm.fmuladd.v{WIDTH}{vecty.element.intrinsic_name}"
        fn = cgutils.get_or_insert_function(
            builder.module, ir.FunctionType(vecty, [vecty] * 3), name
        )
        return builder.call(fn, [splat, vv, av])

    return v(x, v, acc), codegen
