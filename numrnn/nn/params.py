"""Parameter dicts with PyTorch's names and shapes.

Names follow ``torch.nn.RNN/LSTM/GRU``: ``weight_ih_l{k}`` (G*H, D_k), ``weight_hh_l{k}``
(G*H, H), ``bias_ih_l{k}`` and ``bias_hh_l{k}`` (G*H,), with ``_reverse`` for the backward
direction, so that loading a torch module is a dictionary copy (:mod:`numrnn.nn.torch`).
A dense head adds ``weight_out`` (O, F) and ``bias_out`` (O,).
"""

KINDS = ("weight_ih", "weight_hh", "bias_ih", "bias_hh")


def key(kind, layer, direction):
    """PyTorch's name of a parameter, e.g. ``key("weight_hh", 1, 1) == "weight_hh_l1_reverse"``.

    Parameters
    ----------
    kind : {"weight_ih", "weight_hh", "bias_ih", "bias_hh"}
    layer : int
        0 is the bottom layer.
    direction : int
        0 forward, 1 backward (the ``_reverse`` suffix).

    Returns
    -------
    str

    Examples
    --------
    >>> key("weight_hh", 1, 1)
    'weight_hh_l1_reverse'
    """
    return f"{kind}_l{layer}" + ("_reverse" if direction else "")


def shapes(n_gates, input_size, hidden_size, num_layers, num_directions):
    """Ordered dict of parameter shapes, in PyTorch's order.

    Parameters
    ----------
    n_gates : int
        ``G``: 1 (RNN), 3 (GRU: r, z, n) or 4 (LSTM: i, f, g, o).
    input_size : int
        ``D``, the input size of layer 0.
    hidden_size : int
        ``H``; layers above the first read ``num_directions * H`` features.
    num_layers : int
    num_directions : {1, 2}

    Returns
    -------
    dict of str to tuple
        ``weight_ih_l<k>`` (G*H, D_k), ``weight_hh_l<k>`` (G*H, H), ``bias_ih_l<k>`` and
        ``bias_hh_l<k>`` (G*H,), with ``_reverse`` for the backward direction.

    Examples
    --------
    >>> shapes(4, 3, 2, 1, 1)
    {'weight_ih_l0': (8, 3), 'weight_hh_l0': (8, 2), 'bias_ih_l0': (8,), 'bias_hh_l0': (8,)}
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
