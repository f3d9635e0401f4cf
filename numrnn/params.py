"""Parameter dicts with PyTorch's names and shapes, and interop with ``torch.nn`` modules.

Names follow ``torch.nn.RNN/LSTM/GRU``: ``weight_ih_l{k}`` (G*H, D_k), ``weight_hh_l{k}``
(G*H, H), ``bias_ih_l{k}`` and ``bias_hh_l{k}`` (G*H,), with ``_reverse`` for the backward
direction, so that loading a torch module is a dictionary copy. A dense head adds
``weight_out`` (O, F) and ``bias_out`` (O,).
"""

import numpy as np

KINDS = ("weight_ih", "weight_hh", "bias_ih", "bias_hh")


def key(kind, layer, direction):
    """PyTorch's name of a parameter, e.g. ``key("weight_hh", 1, 1) == "weight_hh_l1_reverse"``."""
    return f"{kind}_l{layer}" + ("_reverse" if direction else "")


def shapes(n_gates, input_size, hidden_size, num_layers, num_directions):
    """Ordered dict of parameter shapes, in PyTorch's order.

    Returns
    -------
    dict[str, tuple]
    """
    G, H = n_gates * hidden_size, hidden_size
    out = {}
    for layer in range(num_layers):
        d_in = input_size if layer == 0 else num_directions * H
        for direction in range(num_directions):
            out[key("weight_ih", layer, direction)] = (G, d_in)
            out[key("weight_hh", layer, direction)] = (G, H)
            out[key("bias_ih", layer, direction)] = (G,)
            out[key("bias_hh", layer, direction)] = (G,)
    return out


def flatten(params):
    """Concatenate a parameter dict into one vector (in the dict's order)."""
    return np.concatenate([np.ravel(v) for v in params.values()])


def unflatten(vector, like):
    """Inverse of :func:`flatten`: a dict shaped like ``like`` holding ``vector``'s numbers."""
    out, i = {}, 0
    for k, v in like.items():
        out[k] = np.asarray(vector[i : i + v.size], dtype=v.dtype).reshape(v.shape)
        i += v.size
    if i != len(vector):
        raise ValueError(f"vector must have {i} elements, got {len(vector)}")
    return out


def from_torch(module):
    """Build a numrnn model from a ``torch.nn.RNN``, ``LSTM`` or ``GRU`` with the same weights.

    Parameters
    ----------
    module : torch.nn.RNN | torch.nn.LSTM | torch.nn.GRU
        Time-major (``batch_first=False``), without ``proj_size``; float32 or float64.

    Returns
    -------
    numrnn.models.RNN | LSTM | GRU, with the module's dtype.
    """
    import torch

    from . import models

    kinds = {torch.nn.LSTM: models.LSTM, torch.nn.GRU: models.GRU, torch.nn.RNN: models.RNN}
    cls = kinds.get(type(module))
    if cls is None:
        raise TypeError(f"module must be a torch.nn.RNN, LSTM or GRU, got {type(module).__name__}")
    if module.batch_first:
        raise ValueError("module must be time-major (batch_first=False), got batch_first=True")
    if getattr(module, "proj_size", 0):
        raise ValueError(f"module must have proj_size=0, got {module.proj_size}")
    state = {k: v.detach().cpu().numpy() for k, v in module.state_dict().items()}
    dtype = next(iter(state.values())).dtype
    kwargs = {}
    if cls is models.RNN:
        kwargs["nonlinearity"] = module.nonlinearity
    model = cls(
        module.input_size,
        module.hidden_size,
        num_layers=module.num_layers,
        bidirectional=module.bidirectional,
        dtype=dtype.name,
        dropout=float(module.dropout),
        **kwargs,
    )
    for k, v in model.params.items():
        # a module built with bias=False has no bias tensors: its biases are zero
        v[...] = state[k] if k in state else 0
    return model


def to_torch(model):
    """A ``torch.nn`` module with ``model``'s weights and dtype (inverse of :func:`from_torch`)."""
    import torch

    cls = {"rnn": torch.nn.RNN, "lstm": torch.nn.LSTM, "gru": torch.nn.GRU}[model.cell_type]
    kwargs = {}
    if model.cell_type == "rnn":
        kwargs["nonlinearity"] = model.nonlinearity
    if model.cell_type == "gru" and not model.reset_after:
        raise ValueError(
            "torch.nn.GRU has only the reset-after form; this model has reset_after=False"
        )
    if model.output_size is not None:
        raise ValueError("torch.nn recurrent modules have no output head; this model has one")
    module = cls(
        model.input_size,
        model.hidden_size,
        num_layers=model.num_layers,
        bidirectional=model.bidirectional,
        dtype=getattr(torch, model.dtype.name),
        dropout=model.dropout,
        **kwargs,
    )
    with torch.no_grad():
        for k, p in module.named_parameters():
            p.copy_(torch.from_numpy(model.params[k]))
    return module
