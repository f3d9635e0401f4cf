"""Compile-time settings shared by every Numba kernel in :mod:`numrnn.kernels`."""

# LLVM fast-math flags for ``@njit(fastmath=FASTMATH)``.  Deliberately *without*
# ``nnan`` and ``ninf``: with those LLVM may assume no NaN/inf ever occurs and fold
# away ``isnan``/``isinf`` checks, which would hide exploding gradients from the
# diagnostics.  ``contract`` lets LLVM fuse ``a*b + c`` into FMA instructions;
# ``reassoc`` permits re-ordering sums (vectorised reductions).  Compensated
# tricks must not rely on evaluation order under these flags: the helpers in
# ``_math.py`` use explicit LLVM intrinsics for the order-sensitive steps.
# A plain ``set``: Numba rejects ``frozenset`` here.  Treat it as read-only.
FASTMATH = {"nsz", "arcp", "contract", "afn", "reassoc"}
