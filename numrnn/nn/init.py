"""Weight initializers for recurrent networks.

An *initializer* is a callable ``f(shape, rng, dtype) -> np.ndarray`` where ``rng`` is a
:class:`numpy.random.Generator`. The factories below (``orthogonal(gain=1.0)``, ...) build
:class:`Initializer` objects, which also carry their name and arguments so that a run's
configuration can be stored as JSON (:attr:`Initializer.spec`).

Initializers always draw float64 numbers and cast them to ``dtype`` at the end, so the same
seed gives the same weights (up to rounding) in float32 and float64.

:func:`init_params` initialises a whole parameter dict with PyTorch names; see its docstring
for the rules on parameter kinds, gate blocks, biases and ``torch_default``.
"""

from __future__ import annotations

import math
import re
import zlib
from collections.abc import Callable, Mapping

import numpy as np

from .. import _checks
from .._checks import check_dtype, check_number, check_positive_int
from .._registry import Registry

__all__ = [
    "INITIALIZERS",
    "KINDS",
    "Initializer",
    "constant",
    "get",
    "glorot_normal",
    "glorot_uniform",
    "he_normal",
    "identity",
    "init_params",
    "normal",
    "orthogonal",
    "spec_of",
    "spectral",
    "torch_default",
    "uniform",
    "zeros",
]


class Initializer:
    """A named, parametrised initializer.

    Parameters
    ----------
    name : str
        Registry name, e.g. ``"orthogonal"``.
    sample : callable
        ``sample(shape, rng, **kwargs) -> ndarray`` returning float64 numbers of ``shape``.
    **kwargs
        The factory's arguments, kept for :attr:`spec` and ``repr``.

    Examples
    --------
    >>> import numpy as np
    >>> from numrnn.nn import init
    >>> f = init.orthogonal(gain=2.0)
    >>> f, f.spec
    (orthogonal(gain=2.0), ('orthogonal', {'gain': 2.0}))
    >>> w = f((3, 3), np.random.default_rng(0), np.float32)
    >>> w.dtype, bool(np.allclose(w @ w.T, 4 * np.eye(3), atol=1e-5))
    (dtype('float32'), True)
    """

    def __init__(self, name: str, sample: Callable, **kwargs):
        self.name = name
        self.kwargs = kwargs
        self._sample = sample

    def __call__(self, shape, rng: np.random.Generator, dtype=np.float64) -> np.ndarray:
        """Draw an array of ``shape`` from ``rng``, returned C-contiguous as ``dtype``."""
        shape = tuple(int(s) for s in np.atleast_1d(shape))
        if any(s < 0 for s in shape):
            raise ValueError(f"shape must be non-negative, got {shape}")
        out = self._sample(shape, rng, **self.kwargs)
        return np.ascontiguousarray(out, dtype=dtype)

    @property
    def spec(self) -> tuple[str, dict]:
        """``(name, kwargs)``: what :func:`get` accepts to rebuild this initializer."""
        return self.name, dict(self.kwargs)

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.kwargs.items())
        return f"{self.name}({args})"

    def __eq__(self, other) -> bool:
        return isinstance(other, Initializer) and self.spec == other.spec

    __hash__ = None


# --------------------------------------------------------------------------------------------
# Argument checks and fan computation
# --------------------------------------------------------------------------------------------


def _matrix(shape: tuple, who: str) -> tuple[int, int]:
    if len(shape) != 2:
        raise ValueError(f"{who} needs a 2-D shape (fan_out, fan_in), got {shape}")
    return shape


def _square(shape: tuple, who: str) -> int:
    if len(shape) != 2 or shape[0] != shape[1]:
        raise ValueError(f"{who} needs a square shape (n, n), got {shape}")
    return shape[0]


# --------------------------------------------------------------------------------------------
# Factories
# --------------------------------------------------------------------------------------------


def normal(std: float = 1.0) -> Initializer:
    """N(0, std²) entries; ``std=1`` is the classic unscaled Gaussian init.

    Parameters
    ----------
    std : float >= 0, default 1

    Returns
    -------
    Initializer

    Examples
    --------
    >>> import numpy as np
    >>> from numrnn.nn import init
    >>> w = init.normal(0.1)((400, 400), np.random.default_rng(0))
    >>> round(float(w.std()), 2)
    0.1
    """
    std = check_number("std", std, 0.0)
    return Initializer("normal", lambda shape, rng, std: std * rng.standard_normal(shape), std=std)


def uniform(a: float) -> Initializer:
    """U(-a, a) entries.

    Parameters
    ----------
    a : float >= 0
        Half-width of the interval.

    Returns
    -------
    Initializer

    Examples
    --------
    >>> import numpy as np
    >>> from numrnn.nn import init
    >>> w = init.uniform(0.5)((100, 100), np.random.default_rng(0))
    >>> bool(np.abs(w).max() <= 0.5)
    True
    """
    a = check_number("a", a, 0.0)
    return Initializer("uniform", lambda shape, rng, a: rng.uniform(-a, a, shape), a=a)


def _glorot_uniform(shape, rng, gain):
    fan_out, fan_in = _matrix(shape, "glorot_uniform")
    a = gain * math.sqrt(6.0 / (fan_in + fan_out))
    return rng.uniform(-a, a, shape)


def glorot_uniform(gain: float = 1.0) -> Initializer:
    """Glorot & Bengio (2010): U(-a, a) with ``a = gain * sqrt(6 / (fan_in + fan_out))``.

    ``fan_in = shape[1]``, ``fan_out = shape[0]`` (PyTorch's ``(out, in)`` layout); the
    variance is ``gain² * 2 / (fan_in + fan_out)``.

    Parameters
    ----------
    gain : float, default 1

    Returns
    -------
    Initializer

    Examples
    --------
    >>> import numpy as np
    >>> from numrnn.nn import init
    >>> w = init.glorot_uniform()((200, 400), np.random.default_rng(0))
    >>> bool(np.abs(w).max() <= np.sqrt(6 / 600))
    True
    """
    return Initializer("glorot_uniform", _glorot_uniform, gain=check_number("gain", gain))


def _glorot_normal(shape, rng, gain):
    fan_out, fan_in = _matrix(shape, "glorot_normal")
    return gain * math.sqrt(2.0 / (fan_in + fan_out)) * rng.standard_normal(shape)


def glorot_normal(gain: float = 1.0) -> Initializer:
    """Glorot & Bengio (2010): N(0, gain² * 2 / (fan_in + fan_out)), untruncated (as PyTorch).

    Parameters
    ----------
    gain : float, default 1

    Returns
    -------
    Initializer

    Examples
    --------
    >>> import numpy as np
    >>> from numrnn.nn import init
    >>> w = init.glorot_normal()((300, 300), np.random.default_rng(0))
    >>> round(float(w.var() * 600), 1)          # variance 2 / (fan_in + fan_out)
    2.0
    """
    return Initializer("glorot_normal", _glorot_normal, gain=check_number("gain", gain))


def _he_normal(shape, rng):
    _, fan_in = _matrix(shape, "he_normal")
    return math.sqrt(2.0 / fan_in) * rng.standard_normal(shape) if fan_in else np.zeros(shape)


def he_normal() -> Initializer:
    """He et al. (2015): N(0, 2 / fan_in), ``fan_in = shape[1]``.

    Returns
    -------
    Initializer

    Examples
    --------
    >>> import numpy as np
    >>> from numrnn.nn import init
    >>> w = init.he_normal()((300, 200), np.random.default_rng(0))
    >>> round(float(w.var() * 200), 1)          # variance 2 / fan_in
    2.0
    """
    return Initializer("he_normal", _he_normal)


def _orthogonal(shape, rng, gain):
    rows, cols = _matrix(shape, "orthogonal")
    # QR of a Gaussian matrix with the signs of R's diagonal moved into Q gives a Haar-distributed
    # (semi-)orthogonal matrix; without the sign fix Q would be biased (Mezzadri 2007).
    tall = rows >= cols
    a = rng.standard_normal((rows, cols) if tall else (cols, rows))
    q, r = np.linalg.qr(a)
    q *= np.copysign(1.0, np.diag(r))
    return gain * (q if tall else q.T)


def orthogonal(gain: float = 1.0) -> Initializer:
    """Saxe et al. (2014): a Haar-random (semi-)orthogonal matrix times ``gain``.

    Square: ``W W^T = I``; wide: orthonormal rows; tall: orthonormal columns.

    Parameters
    ----------
    gain : float, default 1

    Returns
    -------
    Initializer

    Examples
    --------
    >>> import numpy as np
    >>> from numrnn.nn import init
    >>> w = init.orthogonal()((4, 4), np.random.default_rng(0))
    >>> bool(np.allclose(w @ w.T, np.eye(4)))
    True
    """
    return Initializer("orthogonal", _orthogonal, gain=check_number("gain", gain))


def _identity(shape, rng, scale):
    return scale * np.eye(_square(shape, "identity"))


def identity(scale: float = 1.0) -> Initializer:
    """Le, Jaitly & Hinton (2015) IRNN: ``scale * I``; square shapes only.

    Parameters
    ----------
    scale : float, default 1

    Returns
    -------
    Initializer

    Examples
    --------
    >>> import numpy as np
    >>> from numrnn.nn import init
    >>> init.identity(0.5)((2, 2), np.random.default_rng(0))
    array([[0.5, 0. ],
           [0. , 0.5]])
    """
    return Initializer("identity", _identity, scale=check_number("scale", scale))


def _spectral(shape, rng, radius):
    n = _square(shape, "spectral")
    w = rng.standard_normal((n, n)) / math.sqrt(max(n, 1))
    rho = np.max(np.abs(np.linalg.eigvals(w))) if n else 0.0
    return w * (radius / rho) if rho > 0 else np.zeros((n, n))


def spectral(radius: float) -> Initializer:
    """A N(0, 1/n) matrix rescaled so that its spectral radius is exactly ``radius``.

    The echo-state recipe: ``radius < 1`` makes the linearised recurrence contract, ``> 1``
    expand. Square shapes only.

    Parameters
    ----------
    radius : float >= 0
        The spectral radius (largest absolute eigenvalue) of the result.

    Returns
    -------
    Initializer

    Examples
    --------
    >>> import numpy as np
    >>> from numrnn.nn import init
    >>> w = init.spectral(1.5)((8, 8), np.random.default_rng(0))
    >>> round(float(np.abs(np.linalg.eigvals(w)).max()), 6)
    1.5
    """
    return Initializer("spectral", _spectral, radius=check_number("radius", radius, 0.0))


def zeros() -> Initializer:
    """All zeros.

    Returns
    -------
    Initializer

    Examples
    --------
    >>> import numpy as np
    >>> from numrnn.nn import init
    >>> init.zeros()((2,), np.random.default_rng(0))
    array([0., 0.])
    """
    return Initializer("zeros", lambda shape, rng: np.zeros(shape))


def constant(v: float) -> Initializer:
    """All entries equal to ``v``.

    Parameters
    ----------
    v : float

    Returns
    -------
    Initializer

    Examples
    --------
    >>> import numpy as np
    >>> from numrnn.nn import init
    >>> init.constant(0.25)((3,), np.random.default_rng(0))
    array([0.25, 0.25, 0.25])
    """
    return Initializer("constant", lambda shape, rng, v: np.full(shape, v), v=check_number("v", v))


def _torch_default(shape, rng, hidden_size):
    if hidden_size is None:
        raise ValueError(
            "torch_default needs hidden_size: use torch_default(hidden_size=H), "
            "or init_params, which supplies it"
        )
    bound = 1.0 / math.sqrt(hidden_size)
    return rng.uniform(-bound, bound, shape)


def torch_default(hidden_size: int | None = None) -> Initializer:
    """PyTorch's RNN default: U(-1/sqrt(H), 1/sqrt(H)) for every weight and bias.

    Parameters
    ----------
    hidden_size : int, optional
        ``H``. Left out, the initializer is *unbound*: :func:`init_params` binds it to the
        model's hidden size (and, for a dense head, to its fan-in, as ``torch.nn.Linear``);
        calling an unbound one directly raises ``ValueError``.

    Returns
    -------
    Initializer

    Examples
    --------
    >>> import numpy as np
    >>> from numrnn.nn import init
    >>> w = init.torch_default(hidden_size=16)((64, 16), np.random.default_rng(0))
    >>> bool(np.abs(w).max() <= 1 / np.sqrt(16))
    True
    """
    if hidden_size is not None:
        hidden_size = check_positive_int("hidden_size", hidden_size)
    return Initializer("torch_default", _torch_default, hidden_size=hidden_size)


INITIALIZERS = Registry(
    "initializer",
    {
        "normal": normal,
        "uniform": uniform,
        "glorot_uniform": glorot_uniform,
        "glorot_normal": glorot_normal,
        "he_normal": he_normal,
        "orthogonal": orthogonal,
        "identity": identity,
        "spectral": spectral,
        "zeros": zeros,
        "constant": constant,
        "torch_default": torch_default,
    },
)


def get(spec) -> Callable:
    """Resolve an initializer spec.

    Parameters
    ----------
    spec : str, (str, dict) or callable
        A registry name (``"orthogonal"``), a name with factory arguments
        (``("spectral", {"radius": 1.1})``), or an initializer callable (returned unchanged).

    Returns
    -------
    callable
        ``f(shape, rng, dtype) -> ndarray``.

    Raises
    ------
    ValueError
        For an unknown name; the message lists the known ones.
    TypeError
        For a malformed spec or arguments the factory does not take.

    Examples
    --------
    >>> from numrnn.nn import init
    >>> init.get(("spectral", {"radius": 1.1}))
    spectral(radius=1.1)
    >>> init.get("glorot_uniform")
    glorot_uniform(gain=1.0)
    """
    if isinstance(spec, str):
        name, kwargs = spec, {}
    elif (
        isinstance(spec, (tuple, list))
        and len(spec) == 2
        and isinstance(spec[0], str)
        and isinstance(spec[1], Mapping)
    ):
        name, kwargs = spec[0], dict(spec[1])
    elif callable(spec):
        return spec
    else:
        raise TypeError(
            f"init spec must be a name, a (name, kwargs) pair or a callable, got {spec!r}"
        )
    return INITIALIZERS.create(name, **kwargs)


def spec_of(init):
    """An ``init`` argument as JSON-serialisable data (initializers by their ``spec``), as
    stored in a model's ``config``; :func:`init_params` accepts it back.

    Parameters
    ----------
    init : None, str, tuple, dict or Initializer
        A model's ``init`` argument.

    Returns
    -------
    None, str, list or dict
        The same with every initializer replaced by its ``[name, kwargs]``.

    Examples
    --------
    >>> spec_of({"weight_hh": orthogonal(), "bias": "zeros"})
    {'weight_hh': ['orthogonal', {'gain': 1.0}], 'bias': 'zeros'}
    """
    if init is None or isinstance(init, (str, int, float)):
        return init
    if isinstance(init, dict):
        return {k: spec_of(v) for k, v in init.items()}
    if isinstance(init, (tuple, list)):
        return [spec_of(v) for v in init]
    spec = getattr(init, "spec", None)
    return spec_of(spec) if spec is not None else repr(init)


# --------------------------------------------------------------------------------------------
# Whole parameter dicts
# --------------------------------------------------------------------------------------------

#: Parameter kinds accepted as keys of a dict ``init``.
KINDS = ("weight_ih", "weight_hh", "bias", "weight_out", "weight_emb")

_RNN_NAME = re.compile(r"^(weight_ih|weight_hh|bias_ih|bias_hh)_l(\d+)(_reverse)?$")
#: Square-only initializers: given as a single spec they apply to weight_hh alone.
_RECURRENT_ONLY = ("identity", "spectral")
_ORDER = {"weight_ih": 0, "weight_hh": 1, "bias_ih": 2, "bias_hh": 3}


def _parse(name: str) -> tuple:
    """Sort key ``(layer, direction, slot)`` for a parameter name; ValueError if unknown."""
    m = _RNN_NAME.match(name)
    if m:
        return int(m[2]), int(bool(m[3])), _ORDER[m[1]]
    if name in ("weight_out", "bias_out"):
        return math.inf, 0, name == "bias_out"
    if name == "weight_emb":
        return -math.inf, 0, 0
    raise ValueError(
        f"unknown parameter name {name!r} in shapes; expected weight_emb, weight_ih_l<k>, "
        "weight_hh_l<k>, bias_ih_l<k>, bias_hh_l<k> (optionally with _reverse), weight_out or "
        "bias_out"
    )


def _kind(name: str) -> str:
    if name.startswith("bias"):
        return "bias"
    return name if name in ("weight_out", "weight_emb") else name[: len("weight_ih")]


def _is_torch_default(f) -> bool:
    return isinstance(f, Initializer) and f.name == "torch_default"


def _resolve(init) -> dict[str, Callable]:
    """Map each kind in :data:`KINDS` to an initializer, following init_params' rules."""
    if isinstance(init, Mapping):
        unknown = sorted(set(init) - set(KINDS))
        if unknown:
            raise ValueError(
                f"init has unknown parameter kind(s) {unknown}; known kinds: {', '.join(KINDS)}"
            )
        return {k: get(init[k]) if k in init else torch_default() for k in KINDS}
    f = torch_default() if init is None else get(init)
    if _is_torch_default(f):
        return dict.fromkeys(KINDS, f)
    # One named initializer means "initialise the weights this way"; biases start at zero, as in
    # the orthogonal/IRNN/echo-state literature. identity and spectral only make sense for the
    # (square) recurrent matrix, which is what init="identity" (IRNN) or a spectral radius
    # sweep mean, so they leave the other weights at PyTorch's default. The embedding table
    # is a lookup, not a map with fans: it keeps its default (N(0, 1)) unless a dict names
    # it, so that sweeping the network's init does not also rescale its inputs.
    if isinstance(f, Initializer) and f.name in _RECURRENT_ONLY:
        return {"weight_ih": torch_default(), "weight_hh": f, "bias": zeros(),
                "weight_out": torch_default(), "weight_emb": torch_default()}  # fmt: skip
    return {"weight_ih": f, "weight_hh": f, "bias": zeros(), "weight_out": f,
            "weight_emb": torch_default()}  # fmt: skip


def _stream(base: int, name: str) -> np.random.Generator:
    # One independent stream per parameter name: a parameter's values depend only on the seed and
    # its own name, not on which other parameters exist or how they are initialised (adding a
    # head or a reverse direction, or sweeping weight_hh's init, leaves weight_ih unchanged).
    return np.random.default_rng(
        np.random.SeedSequence(base, spawn_key=(zlib.crc32(name.encode()),))
    )


def _check_shapes(shapes: Mapping, n_gates: int, hidden_size: int) -> None:
    gh = n_gates * hidden_size
    expected = {"weight_hh": (gh, hidden_size), "bias_ih": (gh,), "bias_hh": (gh,)}
    for name, shape in shapes.items():
        _parse(name)
        shape = tuple(shape)
        slot = name.split("_l")[0]
        want = expected.get(slot)
        if slot == "weight_ih" and (len(shape) != 2 or shape[0] != gh):
            raise ValueError(f"shapes[{name!r}] must be ({gh}, D), got {shape}")
        if want is not None and shape != want:
            raise ValueError(f"shapes[{name!r}] must be {want}, got {shape}")
    if "weight_emb" in shapes:
        emb = tuple(shapes["weight_emb"])
        d_in = tuple(shapes.get("weight_ih_l0", (None, None)))[1]
        if len(emb) != 2 or (d_in is not None and emb[1] != d_in):
            raise ValueError(f"shapes['weight_emb'] must be (V, {d_in or 'D'}), got {emb}")
    if "weight_out" in shapes and len(tuple(shapes["weight_out"])) != 2:
        raise ValueError(f"shapes['weight_out'] must be (O, F), got {tuple(shapes['weight_out'])}")
    if "bias_out" in shapes:
        if "weight_out" not in shapes:
            raise ValueError("shapes has 'bias_out' but no 'weight_out'")
        want = (tuple(shapes["weight_out"])[0],)
        if tuple(shapes["bias_out"]) != want:
            raise ValueError(f"shapes['bias_out'] must be {want}, got {tuple(shapes['bias_out'])}")


def init_params(
    shapes: Mapping[str, tuple],
    n_gates: int,
    hidden_size: int,
    init=None,
    rng=None,
    dtype=np.float64,
    forget_bias: float | None = None,
) -> dict[str, np.ndarray]:
    """Initialise a recurrent network's parameters.

    Parameters
    ----------
    shapes : dict of str to tuple
        PyTorch names and shapes: ``weight_ih_l<k>`` ``(G*H, D_k)``, ``weight_hh_l<k>``
        ``(G*H, H)``, ``bias_ih_l<k>`` and ``bias_hh_l<k>`` ``(G*H,)``, the same with a
        ``_reverse`` suffix, optionally a dense head ``weight_out`` ``(O, F)`` and
        ``bias_out`` ``(O,)``, and optionally a token embedding ``weight_emb`` ``(V, D_0)``.
    n_gates : int
        ``G``: 1 for a vanilla RNN, 3 for a GRU (r, z, n), 4 for an LSTM (i, f, g, o).
    hidden_size : int
        ``H``.
    init : None, spec or dict, optional
        How to initialise, by parameter kind (``weight_ih``, ``weight_hh``, ``bias`` - which
        covers ``bias_ih``, ``bias_hh`` and ``bias_out`` - ``weight_out`` and
        ``weight_emb``):

        - ``None`` or ``"torch_default"``: PyTorch's defaults everywhere, i.e.
          U(-1/sqrt(H), 1/sqrt(H)) for every recurrent weight and bias,
          U(-1/sqrt(F), 1/sqrt(F)) for the head (``torch.nn.Linear``'s default) and
          N(0, 1) for the embedding (``torch.nn.Embedding``'s).
        - any other single spec (see :func:`get`): applies to all weight matrices
          (``weight_ih``, ``weight_hh``, ``weight_out``) and the biases become **zero**.
          Except the square-only ``identity`` and ``spectral``, which describe the
          recurrence: they apply to ``weight_hh`` only, ``weight_ih`` and ``weight_out`` keep
          ``torch_default``, biases become zero (so ``init="identity"`` with a ReLU RNN is
          the IRNN of Le et al. 2015, up to its input weights' scale). In both cases
          ``weight_emb`` keeps its default N(0, 1): a single spec describes the network,
          not its lookup table (name ``weight_emb`` in a dict to change it).
        - a dict ``{kind: spec}``: each kind given its spec; missing kinds get
          ``torch_default``; unknown kinds raise ``ValueError``. E.g. Le et al.'s IRNN
          exactly is ``{"weight_hh": "identity", "weight_ih": ("normal", {"std": 1e-3}),
          "weight_out": ("normal", {"std": 1e-3}), "bias": "zeros"}``.

        The input and recurrent matrices are initialised **per gate block**: each ``(H, D)``
        and ``(H, H)`` row block is drawn separately, so ``orthogonal``, ``identity`` and
        ``spectral`` make each gate's recurrent matrix orthogonal / identity / of the given
        spectral radius, and Glorot's ``fan_out`` is ``H``. Square-only initializers
        given for ``weight_ih`` in a dict need ``D == H``, else ``ValueError``.
    rng : numpy.random.Generator, int or None, optional
        Source of randomness; an int is a seed. One number is drawn from it; each parameter
        then gets its own stream keyed by its name, so a parameter's values depend only on the
        seed, its name and its own initializer.
    dtype : numpy dtype, optional
        float64 (default) or float32. Numbers are drawn in float64 first, so the two agree.
    forget_bias : float, optional
        LSTM only (``n_gates == 4``): sets the forget-gate block ``[H:2H]`` of every
        ``bias_ih_*`` to ``forget_bias`` and of every ``bias_hh_*`` to 0, so their sum (the
        effective forget bias) equals ``forget_bias`` exactly.

    Returns
    -------
    dict of str to ndarray
        Same keys (and order) as ``shapes``, C-contiguous arrays of ``dtype``.

    Examples
    --------
    >>> import numpy as np
    >>> from numrnn.nn import init, params
    >>> shapes = params.shapes(4, 3, 2, 1, 1)            # an LSTM, D = 3, H = 2
    >>> p = init.init_params(shapes, 4, 2, init="orthogonal", rng=0, forget_bias=1.0)
    >>> w = p["weight_hh_l0"][2:4]                        # the f gate's block (H, H)
    >>> bool(np.allclose(w @ w.T, np.eye(2)))             # each gate block is orthogonal
    True
    >>> p["bias_ih_l0"] + p["bias_hh_l0"]                 # zero, the f block set to 1
    array([0., 0., 1., 1., 0., 0., 0., 0.])
    """
    n_gates = check_positive_int("n_gates", n_gates)
    hidden_size = check_positive_int("hidden_size", hidden_size)
    dtype = check_dtype(dtype)
    if forget_bias is not None:
        forget_bias = check_number("forget_bias", forget_bias)
        if n_gates != 4:
            raise ValueError(f"forget_bias needs an LSTM (n_gates=4), got n_gates={n_gates}")
    _check_shapes(shapes, n_gates, hidden_size)
    by_kind = _resolve(init)
    base = int(_checks.as_rng(rng).integers(2**63))

    out = {}
    for name in sorted(shapes, key=_parse):
        shape = tuple(int(s) for s in shapes[name])
        kind = _kind(name)
        f = by_kind[kind]
        if _is_torch_default(f) and f.kwargs["hidden_size"] is None:
            head = name in ("weight_out", "bias_out")
            # torch.nn.Embedding's default is N(0, 1)
            f = normal() if kind == "weight_emb" else torch_default(
                tuple(shapes["weight_out"])[1] if head else hidden_size)  # fmt: skip
        # Gate blocks of the input and recurrent matrices are drawn one after another from the
        # parameter's stream; everything else is one block.
        n_blocks = n_gates if kind in ("weight_ih", "weight_hh") else 1
        block = (shape[0] // n_blocks, *shape[1:])
        stream = _stream(base, name)
        arr = np.empty(shape, dtype=dtype)
        for b in range(n_blocks):
            try:
                values = np.asarray(f(block, stream, dtype))
            except ValueError as err:
                raise ValueError(
                    f"cannot initialise {name} (block {block}) with {f!r}: {err}"
                ) from err
            if values.shape != block:
                raise ValueError(f"initializer {f!r} returned shape {values.shape} for {block}")
            arr[b * block[0] : (b + 1) * block[0]] = values
        out[name] = arr

    if forget_bias is not None:
        h = hidden_size
        for name, arr in out.items():
            if name.startswith("bias_ih"):
                arr[h : 2 * h] = forget_bias
            elif name.startswith("bias_hh"):
                arr[h : 2 * h] = 0.0
    return {name: out[name] for name in shapes}
