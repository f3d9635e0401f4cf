"""Real data read offline from files that installed packages ship, and their simple baselines.

Nothing is downloaded: each loader reads a file inside an installed wheel (located with
:func:`importlib.util.find_spec`, so the package itself is never imported) or the Python
standard library's own sources.

- :func:`sunspots`: the yearly sunspot numbers 1700-2008 that statsmodels ships, for
  one-step-ahead forecasting against :func:`persistence_mse` and a linear AR(p) model
  (:func:`ar_fit`, :func:`ar_predict`) on the same split;
- :func:`japanese_vowels`: the UEA/UCR archive's JapaneseVowels (variable-length sequences of
  12 LPC cepstrum coefficients, 9 speakers) as sktime ships it, with the published accuracy
  in :data:`JAPANESE_VOWELS_REFERENCE`;
- :func:`stdlib_text`: characters from a fixed list of standard-library source files
  (:data:`STDLIB_FILES`), for character-level language models, with :func:`encode_chars` and
  the add-k smoothed :func:`unigram_perplexity` and :func:`bigram_perplexity` baselines
  (:func:`bits_per_char` converts).

The packages are the optional extra ``numrnn[data]`` (``pip install 'numrnn[data]'``); a
loader whose package is missing raises an ImportError that says so.
"""

from __future__ import annotations

import importlib.util
import math
import os
import sysconfig

import numpy as np

from ._checks import ArgumentTypeError, check_int, check_positive_number

__all__ = [
    "JAPANESE_VOWELS_REFERENCE",
    "STDLIB_FILES",
    "ar_fit",
    "ar_predict",
    "bigram_perplexity",
    "bits_per_char",
    "encode_chars",
    "japanese_vowels",
    "persistence_mse",
    "stdlib_text",
    "sunspots",
    "unigram_perplexity",
]

# how to install the packages the loaders read from
_INSTALL_HINT = "pip install 'numrnn[data]'"

#: Published test accuracies on JapaneseVowels' fixed split (270 training, 370 test
#: utterances), as fractions: M. Kudo, J. Toyama and M. Shimbo (1999), "Multidimensional
#: curve classification using passing-through regions", Pattern Recognition Letters
#: 20(11-13), 1103-1111, report 94.1 % for their passing-through-regions classifier and
#: 96.2 % for a 5-state continuous hidden Markov model (the figures of the UCI archive's
#: description of the data set).
JAPANESE_VOWELS_REFERENCE = {
    "passing-through regions (Kudo et al. 1999)": 0.941,
    "5-state continuous HMM (Kudo et al. 1999)": 0.962,
}

#: The standard-library source files :func:`stdlib_text` concatenates, in this order, relative
#: to ``sysconfig.get_paths()["stdlib"]``: large pure-Python modules with much prose in their
#: docstrings and comments, present as these paths in CPython 3.10 to 3.13 (checked). About
#: a million characters (0.95 M on 3.10, 1.02 M on 3.11, 1.06 M on 3.13): their contents
#: change between Python versions.
STDLIB_FILES = (
    "argparse.py",
    "textwrap.py",
    "difflib.py",
    "inspect.py",
    "typing.py",
    "doctest.py",
    "subprocess.py",
    "tarfile.py",
    "enum.py",
    "dataclasses.py",
    "logging/__init__.py",
    "configparser.py",
)


# --------------------------------------------------------------------------------------------
# Files inside installed packages


def _package_file(package, relpath, what):
    """The path of ``relpath`` inside the installed ``package``, found without importing it.

    ImportError (naming the extra to install) when the package is missing, FileNotFoundError
    when it is installed but lacks the file (a version too old or too new).
    """
    spec = importlib.util.find_spec(package)
    locations = None if spec is None else spec.submodule_search_locations
    if not locations:
        raise ImportError(
            f"{what} is read from the {package} package, which is not installed: "
            f"{_INSTALL_HINT} (or pip install {package})"
        )
    for location in locations:
        path = os.path.join(location, *relpath.split("/"))
        if os.path.isfile(path):
            return path
    raise FileNotFoundError(
        f"{what}: the installed {package} ({', '.join(locations)}) has no {relpath}; "
        f"{_INSTALL_HINT} installs a version that ships it"
    )


def sunspots():
    """The yearly mean sunspot numbers 1700-2008, as statsmodels ships them.

    Read from ``statsmodels/datasets/sunspots/sunspots.csv`` without importing statsmodels
    (its source: NOAA's National Geophysical Data Center). A univariate series for
    one-step-ahead forecasting; :func:`persistence_mse` and :func:`ar_fit` /
    :func:`ar_predict` are the baselines for any split of it by index.

    Returns
    -------
    values : numpy.ndarray of float64, shape (309,)
        The yearly sunspot numbers, oldest first.
    years : numpy.ndarray of int64, shape (309,)
        Their years, 1700 to 2008.

    Raises
    ------
    ImportError
        When statsmodels is not installed (``pip install 'numrnn[data]'``).

    Examples
    --------
    >>> from numrnn import datasets
    >>> values, years = datasets.sunspots()
    >>> values.shape, values.dtype, int(years[0]), int(years[-1])
    ((309,), dtype('float64'), 1700, 2008)
    >>> float(values[0]), float(values[-1])
    (5.0, 2.9)
    """
    path = _package_file(
        "statsmodels", "datasets/sunspots/sunspots.csv", "The sunspots data (datasets.sunspots)"
    )
    with open(path, encoding="utf-8") as f:
        header = f.readline().strip().replace('"', "").split(",")
        if header != ["YEAR", "SUNACTIVITY"]:
            raise ValueError(f"{path}: expected the columns YEAR,SUNACTIVITY, got {header}")
        table = np.loadtxt(f, delimiter=",", dtype=np.float64, ndmin=2)
    years = table[:, 0].astype(np.int64)
    if not np.array_equal(table[:, 0], years) or np.any(np.diff(years) != 1):
        raise ValueError(f"{path}: the years are not consecutive integers")
    return np.ascontiguousarray(table[:, 1]), years


def _read_ts(path):
    """Cases and labels of a UEA/UCR ``.ts`` file with class labels.

    The format: ``#`` comment lines, ``@`` header lines (``@dimensions D``, ``@classLabel true
    c1 c2 ...``, ``@data``), then one case a line, ``dim0:dim1:...:label`` with each
    dimension's values separated by commas. Returns a list of (T_i, D) float64 arrays and
    int64 labels indexing the ``@classLabel`` list.
    """
    dims, classes, xs, ys = None, None, [], []
    in_data = False
    with open(path, encoding="utf-8") as f:
        for lineno, raw in enumerate(f, 1):
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            if not in_data:
                key, _, rest = line.partition(" ")
                key = key.lower()
                if key == "@dimensions":
                    dims = int(rest)
                elif key == "@classlabel":
                    flag, *classes = rest.split()
                    if flag.lower() != "true" or not classes:
                        raise ValueError(f"{path}: the cases have no class labels")
                elif key == "@data":
                    in_data = True
                continue
            *parts, label = line.split(":")
            if dims is not None and len(parts) != dims:
                raise ValueError(f"{path}:{lineno}: {len(parts)} dimensions, expected {dims}")
            try:
                case = np.array([p.split(",") for p in parts], dtype=np.float64)
            except ValueError as err:  # unequal lengths or a missing value ('?')
                raise ValueError(f"{path}:{lineno}: unreadable case ({err})") from None
            if label not in classes:
                raise ValueError(f"{path}:{lineno}: label {label!r} not among {classes}")
            xs.append(np.ascontiguousarray(case.T))
            ys.append(classes.index(label))
    if not in_data or classes is None:
        raise ValueError(f"{path}: no @classLabel or @data header")
    return xs, np.asarray(ys, dtype=np.int64)


def japanese_vowels():
    """The JapaneseVowels speaker-identification sequences, with the archive's train/test split.

    Nine male speakers uttered the Japanese vowels /ae/; each utterance is a sequence of
    7 to 29 frames of 12 LPC cepstrum coefficients, and the task is to name the speaker
    (Kudo, Toyama & Shimbo 1999, via the UCI and UEA/UCR archives). The training split has 30
    utterances per speaker (270), the test split 24 to 88 per speaker (370: 31, 35, 88, 44,
    29, 24, 40, 50, 29). Read from the ``.ts`` files that sktime ships
    (``sktime/datasets/data/JapaneseVowels/``), without importing sktime; published
    accuracies on this split are in :data:`JAPANESE_VOWELS_REFERENCE`.

    Returns
    -------
    x_train : list of 270 numpy.ndarray of float64, each shape (T_i, 12)
        The training utterances, time first, T_i from 7 to 29.
    y_train : numpy.ndarray of int64, shape (270,)
        Their speakers, 0 to 8 (the archive's labels 1 to 9, less one).
    x_test : list of 370 numpy.ndarray of float64, each shape (T_i, 12)
        The test utterances.
    y_test : numpy.ndarray of int64, shape (370,)
        Their speakers.

    Raises
    ------
    ImportError
        When sktime is not installed (``pip install 'numrnn[data]'``).

    Examples
    --------
    >>> import numpy as np
    >>> from numrnn import datasets
    >>> x_train, y_train, x_test, y_test = datasets.japanese_vowels()
    >>> len(x_train), len(x_test), x_train[0].shape, x_train[0].dtype
    (270, 370, (20, 12), dtype('float64'))
    >>> np.bincount(y_test).tolist()
    [31, 35, 88, 44, 29, 24, 40, 50, 29]
    """
    out = []
    for split in ("TRAIN", "TEST"):
        path = _package_file(
            "sktime",
            f"datasets/data/JapaneseVowels/JapaneseVowels_{split}.ts",
            "The JapaneseVowels data (datasets.japanese_vowels)",
        )
        out.extend(_read_ts(path))
    return tuple(out)


# --------------------------------------------------------------------------------------------
# Text from the standard library


def stdlib_text(n_chars=None):
    """Characters from the standard library's own sources, present wherever Python is.

    The files of :data:`STDLIB_FILES`, read as UTF-8 (line endings normalised to ``\\n``) from
    ``sysconfig.get_paths()["stdlib"]`` and concatenated in that order, each ending in a
    newline. Deterministic for a given Python version, but the files change between versions:
    the text, its length and alphabet, and so any result on it, are per Python version (record
    ``sys.version_info`` with them). Installations that ship the standard library only compiled
    (some embedded or minimal distributions) lack the files: a FileNotFoundError names them.

    Parameters
    ----------
    n_chars : int or None
        The first ``n_chars`` characters only; None (default) for all of them (about a
        million).

    Returns
    -------
    str
        The text.

    Examples
    --------
    >>> from numrnn import datasets
    >>> text = datasets.stdlib_text(1000)
    >>> len(text), text == datasets.stdlib_text()[:1000]
    (1000, True)
    """
    n_chars = check_int("n_chars", n_chars, 1, none_ok=True)
    root = sysconfig.get_paths()["stdlib"]
    paths = [os.path.join(root, *rel.split("/")) for rel in STDLIB_FILES]
    missing = [p for p in paths if not os.path.isfile(p)]
    if missing:
        raise FileNotFoundError(
            f"stdlib_text needs the standard library's source files; missing: {missing}"
        )
    parts, total = [], 0
    for path in paths:
        with open(path, encoding="utf-8") as f:
            part = f.read()
        if not part.endswith("\n"):
            part += "\n"
        parts.append(part)
        total += len(part)
        if n_chars is not None and total >= n_chars:
            break
    text = "".join(parts)
    if n_chars is not None:
        if n_chars > len(text):
            raise ValueError(
                f"n_chars must be at most {len(text)} (the text's length on this Python), "
                f"got {n_chars}"
            )
        text = text[:n_chars]
    return text


def encode_chars(text, alphabet=None):
    """Characters as integer ids: the position of each character of ``text`` in an alphabet.

    Parameters
    ----------
    text : str
        The characters to encode, non-empty.
    alphabet : str or None
        The characters the ids index, each once; a character of ``text`` outside it is a
        ValueError naming it. None (default): the distinct characters of ``text``, sorted by
        code point. Encode a test text with the alphabet of its training text.

    Returns
    -------
    ids : numpy.ndarray of int64, shape (len(text),)
        ``alphabet.index(c)`` for each character ``c`` of ``text``.
    alphabet : str
        The alphabet used; ``len(alphabet)`` is the vocabulary size.

    Examples
    --------
    >>> from numrnn import datasets
    >>> ids, alphabet = datasets.encode_chars("abracadabra")
    >>> ids.tolist(), alphabet
    ([0, 1, 4, 0, 2, 0, 3, 0, 1, 4, 0], 'abcdr')
    >>> datasets.encode_chars("cab", alphabet)[0].tolist()
    [2, 0, 1]
    """
    if not isinstance(text, str):
        raise ArgumentTypeError(f"text must be a str, got {type(text).__name__}")
    if not text:
        raise ValueError("text must be a non-empty str, got ''")
    codes = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32)
    if alphabet is None:
        alphabet = "".join(sorted(set(text)))
    elif not isinstance(alphabet, str):
        raise ArgumentTypeError(f"alphabet must be a str or None, got {type(alphabet).__name__}")
    elif len(set(alphabet)) != len(alphabet) or not alphabet:
        raise ValueError(
            f"alphabet must be a non-empty str of distinct characters, got {alphabet[:50]!r}"
            + ("..." if len(alphabet) > 50 else "")
        )
    symbols = np.frombuffer(alphabet.encode("utf-32-le"), dtype=np.uint32)
    order = np.argsort(symbols, kind="stable")
    pos = np.searchsorted(symbols[order], codes)
    pos_ok = np.minimum(pos, len(symbols) - 1)
    known = symbols[order][pos_ok] == codes
    if not known.all():
        unknown = sorted(set(text[i] for i in np.flatnonzero(~known)))
        shown = "".join(unknown[:20])
        raise ValueError(
            f"text has {len(unknown)} character(s) outside alphabet: {shown!r}"
            + (" ..." if len(unknown) > 20 else "")
        )
    return order[pos_ok].astype(np.int64), alphabet


# --------------------------------------------------------------------------------------------
# Forecasting baselines


def _series(series, name="series"):
    arr = np.asarray(series)
    if arr.dtype.kind not in "iuf":
        raise TypeError(f"{name} must be a real array of shape (N,), got dtype {arr.dtype}")
    if arr.ndim != 1:
        raise ValueError(f"{name} must be 1-d, shape (N,), got shape {arr.shape}")
    arr = arr.astype(np.float64)
    if not np.isfinite(arr).all():
        raise ValueError(f"{name} contains NaN or inf")
    return arr


def _span(start, stop, n, lo):
    """``start`` and ``stop`` checked as a range of indices of a series of length ``n`` whose
    one-step predictions need ``lo`` earlier values."""
    start = check_int("start", start, lo)
    stop = n if stop is None else check_int("stop", stop, 1)
    if stop > n:
        raise ValueError(f"stop must be at most len(series) = {n}, got {stop}")
    if start >= stop:
        raise ValueError(f"start must be less than stop = {stop}, got {start}")
    return start, stop


def persistence_mse(series, start, stop=None):
    """Mean squared error of the persistence forecast: each value predicted by the one before.

    ::

        MSE = mean over t = start .. stop-1 of (x[t] - x[t-1])**2

    The naive one-step-ahead baseline: a forecaster that has learned nothing but "tomorrow is
    like today" reaches it.

    Parameters
    ----------
    series : array_like, shape (N,)
        The whole series (the value at ``start - 1`` is the first forecast).
    start : int
        The first index predicted, at least 1 (e.g. where the test part begins).
    stop : int or None
        One past the last index predicted; None (default) for ``N``.

    Returns
    -------
    float
        The mean squared error over the ``stop - start`` predicted values.

    Examples
    --------
    >>> from numrnn import datasets
    >>> datasets.persistence_mse([1.0, 2.0, 4.0, 7.0], start=2)  # ((4-2)^2 + (7-4)^2) / 2
    6.5
    """
    x = _series(series)
    start, stop = _span(start, stop, len(x), 1)
    return float(np.mean((x[start:stop] - x[start - 1 : stop - 1]) ** 2))


def ar_fit(series, p):
    """Fit a linear autoregressive AR(p) one-step forecaster by least squares.

    ::

        xhat[t] = c + a_1 x[t-1] + ... + a_p x[t-p]

    with ``c`` and ``a_1..a_p`` minimising the sum of ``(x[t] - xhat[t])**2`` over
    ``t = p .. N-1`` of the given series (pass the training part only, e.g.
    ``values[:n_train]``).

    Parameters
    ----------
    series : array_like, shape (N,)
        The series to fit, ``N >= 2 p + 1`` (at least as many equations as coefficients).
    p : int
        The order, the number of past values each forecast uses (>= 1).

    Returns
    -------
    numpy.ndarray of float64, shape (p + 1,)
        The coefficients ``[c, a_1, ..., a_p]`` (``a_1`` weighs the latest value), for
        :func:`ar_predict`.

    Examples
    --------
    >>> import numpy as np
    >>> from numrnn import datasets
    >>> x = 3.0 + 0.5 ** np.arange(10)  # x_t = 1.5 + 0.5 x_{t-1}, exactly
    >>> np.round(datasets.ar_fit(x, 1), 12).tolist()
    [1.5, 0.5]
    """
    x = _series(series)
    p = check_int("p", p, 1)
    if len(x) < 2 * p + 1:
        raise ValueError(
            f"series must have at least 2 p + 1 = {2 * p + 1} values to fit an AR({p}), "
            f"got {len(x)}"
        )
    design = _lags(x, p, p, len(x))
    coef, *_ = np.linalg.lstsq(design, x[p:], rcond=None)
    return coef


def _lags(x, p, start, stop):
    """Rows ``[1, x_{t-1}, ..., x_{t-p}]`` for t in start..stop-1, shape (stop-start, p+1)."""
    cols = [np.ones(stop - start)] + [x[start - k : stop - k] for k in range(1, p + 1)]
    return np.stack(cols, axis=1)


def ar_predict(series, coef, start, stop=None):
    """One-step-ahead forecasts of a fitted AR(p) model, each from the true previous values.

    ::

        xhat[t] = c + a_1 x[t-1] + ... + a_p x[t-p],   t = start .. stop-1

    Parameters
    ----------
    series : array_like, shape (N,)
        The whole series (the ``p`` values before ``start`` feed the first forecast).
    coef : array_like, shape (p + 1,)
        ``[c, a_1, ..., a_p]`` from :func:`ar_fit`.
    start : int
        The first index predicted, at least ``p``.
    stop : int or None
        One past the last index predicted; None (default) for ``N``.

    Returns
    -------
    numpy.ndarray of float64, shape (stop - start,)
        The forecasts of ``series[start:stop]``; their mean squared error against it is the
        AR baseline on that part.

    Examples
    --------
    >>> import numpy as np
    >>> from numrnn import datasets
    >>> x = np.array([1.0, 2.0, 4.0, 7.0])
    >>> datasets.ar_predict(x, [1.0, 0.5], start=2).tolist()  # 1 + 0.5 x_{t-1}
    [2.0, 3.0]
    """
    x = _series(series)
    coef = _series(coef, "coef")
    if len(coef) < 2:
        raise ValueError(f"coef must have shape (p + 1,) with p >= 1, got shape {coef.shape}")
    p = len(coef) - 1
    start, stop = _span(start, stop, len(x), p)
    return _lags(x, p, start, stop) @ coef


# --------------------------------------------------------------------------------------------
# Character-model baselines


def _ids(name, ids, vocab_size, minimum):
    arr = np.asarray(ids)
    if arr.dtype.kind not in "iu":
        raise TypeError(f"{name} must be an integer array of shape (N,), got dtype {arr.dtype}")
    if arr.ndim != 1 or len(arr) < minimum:
        raise ValueError(f"{name} must be 1-d with at least {minimum} id(s), got shape {arr.shape}")
    if arr.min() < 0 or arr.max() >= vocab_size:
        raise ValueError(
            f"{name} must lie in 0..{vocab_size - 1} (vocab_size - 1), "
            f"got values from {arr.min()} to {arr.max()}"
        )
    return arr.astype(np.int64)


def unigram_perplexity(train_ids, test_ids, vocab_size, k=1.0):
    """Perplexity on ``test_ids`` of the add-k smoothed character frequencies of ``train_ids``.

    ::

        P(c) = (n(c) + k) / (N + k V)
        PPL  = exp(-(1/M) * sum over i = 1..M of ln P(y[i]))

    with ``n(c)`` the count of ``c`` among the ``N`` training ids, ``V = vocab_size`` and
    ``y_1..y_M`` the test ids, every one scored. ``k = 1`` is Laplace smoothing.
    ``log2(PPL)`` is the bits per character (:func:`bits_per_char`).

    Parameters
    ----------
    train_ids : array_like of int, shape (N,)
        The training characters' ids, in ``0..vocab_size-1``.
    test_ids : array_like of int, shape (M,)
        The ids scored.
    vocab_size : int
        ``V``, the number of possible ids.
    k : float
        The pseudo-count added to every count (> 0), default 1.

    Returns
    -------
    float
        The perplexity, between 1 and ``V`` for a large training text.

    Examples
    --------
    >>> from numrnn import datasets
    >>> # P(0) = (3 + 1) / (4 + 2), P(1) = (1 + 1) / 6; PPL^2 = 1 / (2/3 * 1/3) = 4.5
    >>> ppl = datasets.unigram_perplexity([0, 0, 0, 1], [0, 1], vocab_size=2)
    >>> round(ppl**2, 12), round(datasets.bits_per_char(ppl), 6)
    (4.5, 1.084963)
    """
    vocab_size = check_int("vocab_size", vocab_size, 1)
    k = check_positive_number("k", k)
    train = _ids("train_ids", train_ids, vocab_size, 1)
    test = _ids("test_ids", test_ids, vocab_size, 1)
    counts = np.bincount(train, minlength=vocab_size)
    logp = np.log(counts[test] + k) - math.log(len(train) + k * vocab_size)
    return float(np.exp(-logp.mean()))


def bigram_perplexity(train_ids, test_ids, vocab_size, k=1.0):
    """Perplexity on ``test_ids`` of the add-k smoothed character bigram model of ``train_ids``.

    ::

        P(b | a) = (n(a, b) + k) / (n(a, .) + k V)
        PPL      = exp(-(1/(M-1)) * sum over i = 2..M of ln P(y[i] | y[i-1]))

    with ``n(a, b)`` the number of times ``b`` follows ``a`` in the training ids,
    ``n(a, .)`` the number of training bigrams starting with ``a``, ``V = vocab_size``. The
    ``M - 1`` transitions of the test ids are scored; the first test id has no context and is
    not (as a character model reading ``test_ids[:-1]`` predicts ``test_ids[1:]``).
    ``k = 1`` is Laplace smoothing; ``log2(PPL)`` is the bits per character.

    Parameters
    ----------
    train_ids : array_like of int, shape (N,)
        The training characters' ids, in ``0..vocab_size-1``.
    test_ids : array_like of int, shape (M,)
        The ids scored, ``M >= 2``.
    vocab_size : int
        ``V``, the number of possible ids.
    k : float
        The pseudo-count added to every bigram count (> 0), default 1.

    Returns
    -------
    float
        The perplexity.

    Examples
    --------
    >>> from numrnn import datasets
    >>> # train bigrams 0->0, 0->1, 1->0: P(1|0) = (1 + 1) / (2 + 2), P(0|1) = (1 + 1) / (1 + 2)
    >>> ppl = datasets.bigram_perplexity([0, 0, 1, 0], [0, 1, 0], vocab_size=2)
    >>> round(ppl**2, 12)  # 1 / (1/2 * 2/3)
    3.0
    """
    vocab_size = check_int("vocab_size", vocab_size, 1)
    k = check_positive_number("k", k)
    train = _ids("train_ids", train_ids, vocab_size, 1)
    test = _ids("test_ids", test_ids, vocab_size, 2)
    # bigram counts only where the test needs them: sorted pair codes a * V + b
    pairs, pair_counts = np.unique(train[:-1] * vocab_size + train[1:], return_counts=True)
    contexts = np.bincount(train[:-1], minlength=vocab_size)
    wanted = test[:-1] * vocab_size + test[1:]
    n_ab = np.zeros(len(wanted), dtype=np.int64)
    if len(pairs):  # none when the training text is one character
        pos = np.minimum(np.searchsorted(pairs, wanted), len(pairs) - 1)
        found = pairs[pos] == wanted
        n_ab[found] = pair_counts[pos[found]]
    logp = np.log(n_ab + k) - np.log(contexts[test[:-1]] + k * vocab_size)
    return float(np.exp(-logp.mean()))


def bits_per_char(perplexity):
    """Bits per character of a per-character perplexity: ``log2(perplexity)``.

    Parameters
    ----------
    perplexity : float
        A per-character perplexity (>= 1 for any model; > 0 accepted).

    Returns
    -------
    float
        ``log2(perplexity)``, the mean number of bits the model needs per character.

    Examples
    --------
    >>> from numrnn import datasets
    >>> datasets.bits_per_char(8.0)
    3.0
    """
    return math.log2(check_positive_number("perplexity", perplexity))
