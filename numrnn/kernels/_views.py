"""Views of a kernel's array arguments that Numba does not reference-count, and of any layout.

Every view a compiled loop takes (``hs[m, t]``, ``h[lo:n]``, ``whh_t[m]``) increments the
array's reference count when it is made and decrements it when it dies, and passing it to
a helper does so again: atomic operations on the array's one count, which the threads of
:func:`numrnn.kernels._parallel.run_items` all share. In a tiny network's time loop they
cost more than the arithmetic: a tanh RNN of 8 units and 8 rows took 405 ns per step with
them and 233 ns without (``_forward_items`` on one thread, float64).

``borrow(a, b, ...)`` is ``(a, b, ...)`` with no owner (Numba's meminfo and parent
pointers NULL), so their views are not counted. It is only for a kernel's arguments: the
caller holds them for the whole call, so the memory outlives every view. Never borrow an
array the kernel allocates itself: Numba may free it after its last named use while a
borrowed view still reads it.

``strided(a)`` is ``a`` typed as an array of any layout, so that a helper compiled for it
serves C-contiguous arrays and transposed views alike.
"""

from numba import types
from numba.core import cgutils
from numba.core.errors import TypingError
from numba.core.imputils import impl_ret_borrowed
from numba.extending import intrinsic


@intrinsic
def borrow(typingctx, *arrays):
    """The arrays, as a tuple, without reference counting (see the module's docstring)."""
    for a in arrays:
        if not isinstance(a, types.Array):
            raise TypingError(f"borrow takes arrays, got {a}")
    result = types.Tuple(tuple(arrays))

    def codegen(context, builder, sig, args):
        values = cgutils.unpack_tuple(builder, args[0])  # the arrays come as one tuple
        out = []
        for ty, value in zip(result.types, values, strict=True):
            src = context.make_array(ty)(context, builder, value)
            view = context.make_array(ty)(context, builder)
            for field in ("nitems", "itemsize", "data", "shape", "strides"):
                setattr(view, field, getattr(src, field))
            view.meminfo = cgutils.get_null_value(view.meminfo.type)
            view.parent = cgutils.get_null_value(view.parent.type)
            out.append(view._getvalue())
        return context.make_tuple(builder, result, out)

    return result(types.StarArgTuple.from_types(arrays)), codegen


@intrinsic
def strided(typingctx, a):
    """``a`` typed as an array of any layout (Numba's ``'A'``), the same view.

    A helper compiles once per layout of its arguments: typed thus, one compiled copy of a
    product serves the time loops' C-contiguous rows and the weight gradients' transposed
    views (``linalg.add_dot_loops``, ``panels.add_dot_panels``: 0.3-0.4 s each of a first
    backward pass). They read ``a`` element by element (a scalar times a row of b), so its
    strides cost nothing measurable: the models' forward + backward ran as fast, within
    the noise, from tiny networks and ensembles to H = 128.
    """
    if not isinstance(a, types.Array):
        raise TypingError(f"strided takes an array, got {a}")

    def codegen(context, builder, sig, args):
        return impl_ret_borrowed(context, builder, sig.return_type, args[0])

    return a.copy(layout="A")(a), codegen
