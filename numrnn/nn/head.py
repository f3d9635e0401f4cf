"""The dense head on top of the recurrent layers, dropout, and per-member random streams.

Dropout is applied between layers and before the head only (Pham et al. 2014), never on
the recurrent connection h_{t-1} -> h_t. The head reads every step's top output
(``readout="all"``, many-to-many) or the final states (``"last"``, many-to-one: the
forward direction's last state beside the backward direction's state at t = 0).
All arrays carry the leading member axis K.
"""

import numpy as np

from .._checks import as_rng
from ..kernels import linalg


def no_bias(a):
    """The (0, 0) bias that tells ``linalg.matmul`` to add none."""
    return np.zeros((0, 0), a.dtype)


def matmul_t(a, w, bias):
    """``a @ w.T + bias`` per member: a (K or 1, ..., F), w (K, O, F), bias (K, O)
    -> (K, ..., O)."""
    flat = np.ascontiguousarray(a).reshape(a.shape[0], -1, a.shape[-1])
    out = linalg.matmul(flat, np.ascontiguousarray(w.transpose(0, 2, 1)), bias)
    return out.reshape((w.shape[0],) + a.shape[1:-1] + (-1,))


def matmul_tn(a, b):
    """``(a.T @ b, empty, a.sum)`` per member over all leading axes: a (K, ..., G), b (K or
    1, ..., D) -> (K, G, D), (K, G, 0), (K, G); see ``linalg.matmul_tn``."""
    a4 = np.ascontiguousarray(a).reshape(a.shape[0], 1, -1, a.shape[-1])
    b4 = np.ascontiguousarray(b).reshape(b.shape[0], 1, -1, b.shape[-1])
    return linalg.matmul_tn(a4, b4, np.zeros((0, 0, 0, 0), a.dtype))


def member_rngs(rng, K):
    """One Generator for all members, or (from a list) one per member."""
    if not isinstance(rng, (list, tuple)):
        return as_rng(rng)
    if len(rng) != K:
        raise ValueError(f"rng must be one Generator or a list of {K} (one per member), "
                         f"got a list of {len(rng)}")  # fmt: skip
    return [as_rng(r, f"rng[{k}]") for k, r in enumerate(rng)]


def dropout(a, p, rng):
    """Inverted dropout of a (K, ...): ``(a * mask, mask)``, mask entries 0 or 1/(1-p).

    ``rng`` is one Generator, or a list of K whose k-th draws member k's mask.
    """
    if isinstance(rng, list):
        u = np.stack([r.random(a.shape[1:]) for r in rng])
    else:
        u = rng.random(a.shape)
    mask = (u >= p).astype(a.dtype) / a.dtype.type(1 - p)
    return a * mask, mask


def features(model, top, h_final):
    """Input of the head: every step's top output (K, T, B, F), or (K, B, F) for "last":
    the final forward state beside the backward direction's state at t = 0."""
    if model.readout == "all":
        return top
    L, dirs = model.num_layers, model.num_directions
    return np.concatenate([h_final[:, (L - 1) * dirs + d] for d in range(dirs)], axis=2)


def forward(model, w, top, h_final, packed, drop, rng):
    """The head's output (K, T, B, O) or (K, B, O) in sorted batch order, its input and
    its dropout mask (None when not in training mode). Steps past a sequence's end give
    zero output."""
    feats = features(model, top, h_final)
    mask = None
    if drop:
        feats, mask = dropout(feats, drop, rng)
    output = matmul_t(feats, w["weight_out"], w["bias_out"])
    if model.readout == "all" and packed.lengths is not None:
        output *= packed.live()[None, :, :, None]
    return output, feats, mask


def backward(model, tape, d_output, dfinals):
    """Gradients of the head's weights, and the gradient entering the top layer's output
    (K, T, B, dirs*H); for ``readout="last"`` the final states' gradient is added into
    ``dfinals[0]`` (in place) and the top output's is zero."""
    K, T, B = tape.K, tape.T, tape.B
    H, L, dirs = model.hidden_size, model.num_layers, model.num_directions
    if model.readout == "all" and tape.packed.lengths is not None:
        d_output = d_output * tape.packed.live()[None, :, :, None]
    feats, w = tape.feats, tape.weights
    dy = d_output.reshape(K, -1, model.output_size)
    grads = {}
    grads["weight_out"], _, grads["bias_out"] = matmul_tn(dy, feats)
    dy = np.ascontiguousarray(dy)
    dfeat = linalg.matmul(dy, w["weight_out"], no_bias(dy)).reshape(feats.shape)
    if tape.head_mask is not None:
        dfeat *= tape.head_mask
    if model.readout == "all":
        return grads, dfeat
    for d in range(dirs):
        dfinals[0][:, (L - 1) * dirs + d] += dfeat[:, :, d * H : (d + 1) * H]
    return grads, np.zeros((K, T, B, dirs * H), model.dtype)
