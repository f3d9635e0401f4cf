"""Interop with ``torch.nn.RNN``, ``LSTM``, ``GRU`` and ``Embedding``: the same weights both
ways.

numrnn's parameters have PyTorch's names, shapes and gate orders (:mod:`numrnn.nn.params`),
so converting is a dictionary copy. A model's token embedding ``weight_emb`` is a
``torch.nn.Embedding``'s ``weight`` beside the recurrent module. torch is optional: it is
imported only here, and only when a conversion is asked for.
"""

import numpy as np

from .. import _checks
from .cells import CELLS, MODELS


def _torch():
    try:
        import torch
    except ImportError as err:
        raise ImportError(
            "converting to or from torch.nn needs PyTorch: pip install 'numrnn[torch]' (the "
            "CPU wheel: pip install torch --index-url https://download.pytorch.org/whl/cpu)"
        ) from err
    return torch


def embedding_weight(module, name="module"):
    """The table (a NumPy copy) and ``padding_idx`` of a ``torch.nn.Embedding``, checked.

    Parameters
    ----------
    module : torch.nn.Embedding
        Without ``max_norm`` or ``scale_grad_by_freq``; float32 or float64.
    name : str, default "module"
        The argument's name in messages.

    Returns
    -------
    weight : ndarray, shape (V, D)
    padding_idx : int or None

    Examples
    --------
    >>> import torch
    >>> w, pad = embedding_weight(torch.nn.Embedding(4, 2, padding_idx=1))
    >>> w.shape, w.dtype.name, pad
    ((4, 2), 'float32', 1)
    """
    torch = _torch()
    if not isinstance(module, torch.nn.Embedding):
        raise TypeError(f"{name} must be a torch.nn.Embedding, got {type(module).__name__}")
    if module.max_norm is not None:
        raise ValueError(f"{name} must have max_norm=None (numrnn does not renormalise rows), "
                         f"got max_norm={module.max_norm}")  # fmt: skip
    if module.scale_grad_by_freq:
        raise ValueError(f"{name} must have scale_grad_by_freq=False, got True")
    weight = module.weight.detach().cpu().numpy().copy()
    _checks.check_dtype(weight.dtype, f"{name}'s dtype")
    return np.ascontiguousarray(weight), module.padding_idx


def torch_embedding(weight, padding_idx):
    """A ``torch.nn.Embedding`` holding a copy of ``weight``, of its dtype.

    Parameters
    ----------
    weight : ndarray, shape (V, D)
    padding_idx : int or None

    Returns
    -------
    torch.nn.Embedding

    Examples
    --------
    >>> import numpy as np
    >>> torch_embedding(np.zeros((4, 2)), 0)
    Embedding(4, 2, padding_idx=0)
    """
    torch = _torch()
    module = torch.nn.Embedding(*weight.shape, padding_idx=padding_idx,
                                dtype=getattr(torch, weight.dtype.name))  # fmt: skip
    with torch.no_grad():
        module.weight.copy_(torch.from_numpy(np.ascontiguousarray(weight)))
    return module


def from_torch(module, embedding=None):
    """Build a numrnn model from a ``torch.nn.RNN``, ``LSTM`` or ``GRU`` with the same weights.

    Parameters
    ----------
    module : torch.nn.RNN | torch.nn.LSTM | torch.nn.GRU
        Time-major (``batch_first=False``), without ``proj_size``; float32 or float64.
    embedding : torch.nn.Embedding or None
        The table that feeds ``module`` token by token (``embedding_dim`` equal to the
        module's ``input_size``, the same dtype, no ``max_norm`` or
        ``scale_grad_by_freq``): the model then reads token ids, with ``vocab_size``,
        ``padding_idx`` and ``weight_emb`` from it.

    Returns
    -------
    numrnn.RNN, numrnn.LSTM or numrnn.GRU
        With the module's sizes, dtype, dropout and weights (a module built with
        ``bias=False`` gives zero biases).

    Examples
    --------
    >>> import numpy as np, torch, numrnn as nr
    >>> module = torch.nn.LSTM(3, 4, num_layers=2, dtype=torch.float64)
    >>> model = nr.from_torch(module)
    >>> x = np.random.default_rng(0).standard_normal((5, 2, 3))
    >>> out, _ = module(torch.from_numpy(x))
    >>> bool(np.allclose(model.forward(x).output, out.detach().numpy()))
    True
    >>> emb = torch.nn.Embedding(10, 3, padding_idx=0, dtype=torch.float64)
    >>> lm = nr.from_torch(module, embedding=emb)         # reads token ids (T, B)
    >>> lm.vocab_size, lm.padding_idx, lm.params["weight_emb"].shape
    (10, 0, (10, 3))
    """
    torch = _torch()
    by_class = {getattr(torch.nn, s.torch_class): s for s in CELLS.values()}
    spec = by_class.get(type(module))
    if spec is None:
        raise TypeError(f"module must be a torch.nn.RNN, LSTM or GRU, got {type(module).__name__}")
    if module.batch_first:
        raise ValueError("module must be time-major (batch_first=False), got batch_first=True")
    if getattr(module, "proj_size", 0):
        raise ValueError(f"module must have proj_size=0, got {module.proj_size}")
    state = {k: v.detach().cpu().numpy() for k, v in module.state_dict().items()}
    dtype = next(iter(state.values())).dtype
    # the cell's options that the module has (an RNN's nonlinearity); the others default
    options = {k: getattr(module, k) for k in spec.options if hasattr(module, k)}
    table = padding_idx = None
    if embedding is not None:
        table, padding_idx = embedding_weight(embedding, "embedding")
        if table.shape[1] != module.input_size:
            raise ValueError(
                f"embedding must have embedding_dim equal to module.input_size "
                f"{module.input_size}, got {table.shape[1]}"
            )
        if table.dtype != dtype:
            raise TypeError(f"embedding must have the module's dtype {dtype.name}, got "
                            f"{table.dtype.name}")  # fmt: skip
        options |= {"vocab_size": table.shape[0], "padding_idx": padding_idx}
    model = MODELS[spec.name](
        module.input_size,
        module.hidden_size,
        num_layers=module.num_layers,
        bidirectional=module.bidirectional,
        dtype=dtype.name,
        dropout=float(module.dropout),
        **options,
    )
    for k, v in model.params.items():
        if k == "weight_emb":
            v[...] = table
            continue
        # a module built with bias=False has no bias tensors: its biases are zero
        v[...] = state[k] if k in state else 0
    return model


def to_torch(model, embedding=False):
    """A ``torch.nn`` module with ``model``'s weights and dtype (inverse of :func:`from_torch`).

    Parameters
    ----------
    model : RNN, LSTM or GRU
        Without a head (``output_size=None``); a GRU in the reset-after form.
    embedding : bool, default False
        For a model with an embedding (``vocab_size``), which must say so: True returns
        the pair ``(torch.nn.Embedding, module)``, the table that feeds the module and the
        module (what :func:`from_torch` takes back as ``module, embedding=...``).

    Returns
    -------
    torch.nn.RNN, torch.nn.LSTM or torch.nn.GRU, or a pair (torch.nn.Embedding, module)
        Time-major (``batch_first=False``), with the model's sizes, dtype and dropout;
        with ``embedding=True``, preceded by the model's table.

    Raises
    ------
    ValueError
        For a model with a head, a GRU with ``reset_after=False``, a model with an
        embedding without ``embedding=True``, or ``embedding=True`` for a model without one.
    ImportError
        When PyTorch is not installed.

    Examples
    --------
    >>> import numrnn as nr
    >>> from numrnn.nn import to_torch
    >>> to_torch(nr.GRU(3, 4, seed=0))
    GRU(3, 4)
    >>> to_torch(nr.GRU(3, 4, seed=0, vocab_size=10, padding_idx=0), embedding=True)
    (Embedding(10, 3, padding_idx=0), GRU(3, 4))
    """
    options = model.cell.torch_options()
    if model.output_size is not None:
        raise ValueError("torch.nn recurrent modules have no output head; this model has one")
    embedding = _checks.check_bool("embedding", embedding)
    if model.vocab_size is not None and not embedding:
        raise ValueError(
            f"this model reads token ids through an embedding (vocab_size={model.vocab_size}), "
            f"which torch.nn.{model.cell.spec.torch_class} has not: use "
            "to_torch(model, embedding=True) for the pair (torch.nn.Embedding, module)"
        )
    if embedding and model.vocab_size is None:
        raise ValueError("embedding=True needs a model with an embedding (vocab_size); "
                         "this one reads features")  # fmt: skip
    torch = _torch()
    module = getattr(torch.nn, model.cell.spec.torch_class)(
        model.input_size,
        model.hidden_size,
        num_layers=model.num_layers,
        bidirectional=model.bidirectional,
        dtype=getattr(torch, model.dtype.name),
        dropout=model.dropout,
        **options,
    )
    with torch.no_grad():
        for k, p in module.named_parameters():
            p.copy_(torch.from_numpy(model.params[k]))
    if embedding:
        return torch_embedding(model.params["weight_emb"], model.padding_idx), module
    return module
