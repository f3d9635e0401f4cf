"""Interop with ``torch.nn.RNN``, ``LSTM`` and ``GRU``: the same weights both ways.

numrnn's parameters have PyTorch's names, shapes and gate orders (:mod:`numrnn.nn.params`),
so converting is a dictionary copy. torch is optional: it is imported only here, and only
when a conversion is asked for.
"""

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


def from_torch(module):
    """Build a numrnn model from a ``torch.nn.RNN``, ``LSTM`` or ``GRU`` with the same weights.

    Parameters
    ----------
    module : torch.nn.RNN | torch.nn.LSTM | torch.nn.GRU
        Time-major (``batch_first=False``), without ``proj_size``; float32 or float64.

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
        # a module built with bias=False has no bias tensors: its biases are zero
        v[...] = state[k] if k in state else 0
    return model


def to_torch(model):
    """A ``torch.nn`` module with ``model``'s weights and dtype (inverse of :func:`from_torch`).

    Parameters
    ----------
    model : RNN, LSTM or GRU
        Without a head (``output_size=None``); a GRU in the reset-after form.

    Returns
    -------
    torch.nn.RNN, torch.nn.LSTM or torch.nn.GRU
        Time-major (``batch_first=False``), with the model's sizes, dtype and dropout.

    Raises
    ------
    ValueError
        For a model with a head, or a GRU with ``reset_after=False``.
    ImportError
        When PyTorch is not installed.

    Examples
    --------
    >>> import numrnn as nr
    >>> from numrnn.nn import to_torch
    >>> to_torch(nr.GRU(3, 4, seed=0))
    GRU(3, 4)
    """
    options = model.cell.torch_options()
    if model.output_size is not None:
        raise ValueError("torch.nn recurrent modules have no output head; this model has one")
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
    return module
