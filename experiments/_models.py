"""The three recurrent models of Le, Jaitly & Hinton (2015), shared by the experiments.

- ``tanh``: a tanh RNN with N(0, 0.001) weights and zero biases ("RNN + tanh");
- ``irnn``: a ReLU RNN with identity W_hh, zero biases and N(0, 0.001) input and output
  weights (IRNN);
- ``lstm``: an LSTM with forget-gate bias 1, PyTorch's default initialisation otherwise.
"""

import numrnn as nr

SMALL = ("normal", {"std": 1e-3})
NAMES = ("tanh", "irnn", "lstm")


def build(name, input_size, hidden, output_size, readout, seed=0, dtype="float64"):
    """Model ``name`` (one of :data:`NAMES`) with a linear head of ``output_size``."""
    head = dict(output_size=output_size, readout=readout, seed=seed, dtype=dtype)
    if name == "tanh":
        init = {"weight_hh": SMALL, "weight_ih": SMALL, "weight_out": SMALL, "bias": "zeros"}
        return nr.RNN(input_size, hidden, nonlinearity="tanh", init=init, **head)
    if name == "irnn":
        init = {"weight_hh": "identity", "weight_ih": SMALL, "weight_out": SMALL,
                "bias": "zeros"}  # fmt: skip
        return nr.RNN(input_size, hidden, nonlinearity="relu", init=init, **head)
    if name == "lstm":
        return nr.LSTM(input_size, hidden, forget_bias=1.0, **head)
    raise ValueError(f"model must be one of {NAMES}, got {name!r}")
