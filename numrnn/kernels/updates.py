"""Optimizers' parameter updates as single passes over the arrays (``numrnn/optim.py``).

Adam's update written with NumPy is ten array operations, each a pass over the parameter
(and most a temporary as large): for a small network that is ten calls' fixed costs per
parameter, a tenth of a training step; for a large one, ten passes over memory. Here it is
one compiled loop, with torch's operations in torch's order on every element, so it is
the NumPy formula's result bit for bit (no fused multiply-adds: Numba contracts nothing
without ``fastmath``).
"""

import numpy as np
from numba import njit


# error_model="numpy": a float division by zero gives inf or NaN, as in NumPy, instead of
# raising; the check it spares keeps the loop scalar (83k parameters: 351 against 50 us)
@njit(cache=True, nogil=True, error_model="numpy")
def adam(p, g, m, v, step_size, beta1, beta2, bias2_sqrt, eps):
    """One Adam step (``torch.optim.Adam``'s, without weight decay), in place.

    Parameters
    ----------
    p, g, m, v : (n,) C-contiguous arrays of one float dtype
        The parameter, its gradient, and the first and second moment estimates.
    step_size : (K,) array of the dtype
        ``lr / (1 - beta1**t)``; with K > 1, member k's for the k-th of K equal parts of
        ``p`` (an ensemble's stacked parameter, one rate per member).
    beta1, beta2, bias2_sqrt, eps : float
        ``bias2_sqrt`` is ``sqrt(1 - beta2**t)``. Each is rounded to the arrays' dtype
        first, as NumPy does with a Python float against a float32 array.
    """
    dt = p.dtype.type
    c1, b2, c2 = dt(1 - beta1), dt(beta2), dt(1 - beta2)
    bc, e = dt(bias2_sqrt), dt(eps)
    per = p.size // step_size.size
    for k in range(step_size.size):
        # member k's part as views indexed from 0, its step size outside the loop: the
        # loop then vectorises (an index that might be negative keeps it scalar)
        lo, hi, s = k * per, (k + 1) * per, step_size[k]
        pk, gk, mk, vk = p[lo:hi], g[lo:hi], m[lo:hi], v[lo:hi]
        for i in range(per):
            gi = gk[i]
            mi = mk[i] + c1 * (gi - mk[i])  # torch's lerp_
            vi = vk[i] * b2 + c2 * (gi * gi)
            mk[i] = mi
            vk[i] = vi
            pk[i] = pk[i] - s * (mi / (np.sqrt(vi) / bc + e))
