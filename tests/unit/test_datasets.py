"""Data sets read offline from installed packages, and their baselines checked by hand."""

import importlib.util
import math
import os
import sys
import sysconfig
import types

import numpy as np
import pytest

from numrnn import datasets

# statsmodels (sunspots) and sktime (JapaneseVowels) are the optional extra numrnn[data].
needs_statsmodels = pytest.mark.skipif(
    importlib.util.find_spec("statsmodels") is None, reason="needs statsmodels (numrnn[data])"
)
needs_sktime = pytest.mark.skipif(
    importlib.util.find_spec("sktime") is None, reason="needs sktime (numrnn[data])"
)


# -- loaders ----------------------------------------------------------------------------------


@needs_statsmodels
def test_sunspots_values_and_years():
    imported = "statsmodels" in sys.modules
    values, years = datasets.sunspots()
    assert ("statsmodels" in sys.modules) == imported  # read, not imported
    assert values.shape == years.shape == (309,)
    assert values.dtype == np.float64 and years.dtype == np.int64
    np.testing.assert_array_equal(years, np.arange(1700, 2009))
    assert values[:5].tolist() == [5.0, 11.0, 16.0, 23.0, 36.0]  # 1700-1704
    assert values[-2:].tolist() == [7.5, 2.9]  # 2007, 2008
    assert years[np.argmax(values)] == 1957 and values.max() == 190.2
    assert values.min() == 0.0 and np.isfinite(values).all()


@needs_sktime
def test_japanese_vowels_counts_lengths_and_labels():
    x_train, y_train, x_test, y_test = datasets.japanese_vowels()
    assert len(x_train) == len(y_train) == 270 and len(x_test) == len(y_test) == 370
    assert y_train.dtype == y_test.dtype == np.int64
    # the archive's documented split: 30 per speaker to train, 24..88 per speaker to test
    assert np.bincount(y_train).tolist() == [30] * 9
    assert np.bincount(y_test).tolist() == [31, 35, 88, 44, 29, 24, 40, 50, 29]
    lengths = [len(x) for x in x_train + x_test]
    assert min(lengths) == 7 and max(lengths) == 29
    for x in x_train + x_test:
        assert x.ndim == 2 and x.shape[1] == 12 and x.dtype == np.float64
        assert x.flags.c_contiguous and np.isfinite(x).all()
    # the first training case: 20 frames, time first (its three first coefficients at t = 0)
    assert x_train[0].shape == (20, 12) and y_train[0] == 0
    np.testing.assert_array_equal(x_train[0][0, :3], [1.860936, -0.207383, 0.261557])


TS = """\
#A comment
@problemName Tiny
@dimensions 2
@equalLength false
@classLabel true a b
@data
1,2,3:4,5,6:b
0.5,-1:2,3:a
"""


def test_read_ts_parses_cases_time_first(tmp_path):
    path = tmp_path / "tiny.ts"
    path.write_text(TS)
    xs, ys = datasets._read_ts(str(path))
    np.testing.assert_array_equal(xs[0], [[1, 4], [2, 5], [3, 6]])
    np.testing.assert_array_equal(xs[1], [[0.5, 2], [-1, 3]])
    assert ys.tolist() == [1, 0] and ys.dtype == np.int64


@pytest.mark.parametrize(
    "case, match",
    [("1,?:2,3:a", "unreadable"), ("1,2:3:a", "unreadable"), ("1:2:c", "'c' not among"),
     ("1:2:3:a", "3 dimensions, expected 2")],
)  # fmt: skip
def test_read_ts_rejects_bad_cases(tmp_path, case, match):
    path = tmp_path / "bad.ts"
    path.write_text(TS.split("@data")[0] + "@data\n" + case + "\n")
    with pytest.raises(ValueError, match=match):
        datasets._read_ts(str(path))


def _find_spec_without(*missing):
    real = importlib.util.find_spec

    def find_spec(name, package=None):
        return None if name in missing else real(name, package)

    return find_spec


@pytest.mark.parametrize(
    "loader, package", [(datasets.sunspots, "statsmodels"), (datasets.japanese_vowels, "sktime")]
)
def test_missing_package_says_which_extra(monkeypatch, loader, package):
    monkeypatch.setattr(importlib.util, "find_spec", _find_spec_without(package))
    with pytest.raises(ImportError, match=rf"pip install 'numrnn\[data\]'.*{package}"):
        loader()


def test_package_without_the_file_says_which_extra(monkeypatch, tmp_path):
    fake = types.SimpleNamespace(submodule_search_locations=[str(tmp_path)])
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, package=None: fake)
    with pytest.raises(FileNotFoundError, match=r"sunspots\.csv.*numrnn\[data\]"):
        datasets.sunspots()


# -- text ---------------------------------------------------------------------------------------


def test_stdlib_text_is_deterministic_and_prefixes_agree():
    text = datasets.stdlib_text()
    assert text == datasets.stdlib_text()
    assert len(text) > 500_000 and "\r" not in text
    assert datasets.stdlib_text(1234) == text[:1234]
    first = os.path.join(sysconfig.get_paths()["stdlib"], datasets.STDLIB_FILES[0])
    with open(first, encoding="utf-8") as f:
        assert text.startswith(f.read())
    with pytest.raises(ValueError, match=rf"n_chars must be at most {len(text)}"):
        datasets.stdlib_text(len(text) + 1)
    with pytest.raises(ValueError, match="n_chars"):
        datasets.stdlib_text(0)


def test_encode_chars_round_trip_and_given_alphabet():
    ids, alphabet = datasets.encode_chars("hello, world")
    assert alphabet == " ,dehlorw" and ids.dtype == np.int64
    assert "".join(alphabet[i] for i in ids) == "hello, world"
    ids2, same = datasets.encode_chars("low", alphabet="wol")
    assert ids2.tolist() == [2, 1, 0] and same == "wol"
    text = datasets.stdlib_text(20_000)
    ids3, alphabet3 = datasets.encode_chars(text)
    assert "".join(alphabet3[i] for i in ids3) == text


def test_encode_chars_errors_name_the_argument_and_the_characters():
    with pytest.raises(ValueError, match=r"2 character\(s\) outside alphabet: 'xz'"):
        datasets.encode_chars("axbz", alphabet="ab")
    with pytest.raises(ValueError, match="alphabet must be .* distinct"):
        datasets.encode_chars("ab", alphabet="aab")
    with pytest.raises(TypeError, match="text must be a str"):
        datasets.encode_chars(b"ab")
    with pytest.raises(ValueError, match="text must be a non-empty"):
        datasets.encode_chars("")


# -- forecasting baselines ------------------------------------------------------------------------


def test_persistence_mse_by_hand():
    x = [1.0, 2.0, 4.0, 7.0, 11.0]
    assert datasets.persistence_mse(x, 1) == (1 + 4 + 9 + 16) / 4
    assert datasets.persistence_mse(x, 2, stop=4) == (4 + 9) / 2
    with pytest.raises(ValueError, match="start"):
        datasets.persistence_mse(x, 0)
    with pytest.raises(ValueError, match="stop must be at most len"):
        datasets.persistence_mse(x, 1, stop=6)


def test_ar_fit_recovers_an_exact_ar2_and_predicts_one_step():
    c, a1, a2 = 0.3, 1.2, -0.5
    x = [1.0, -0.4]
    for _ in range(30):
        x.append(c + a1 * x[-1] + a2 * x[-2])
    x = np.array(x)
    coef = datasets.ar_fit(x[:20], 2)
    np.testing.assert_allclose(coef, [c, a1, a2], atol=1e-9)
    pred = datasets.ar_predict(x, coef, start=20, stop=25)
    np.testing.assert_allclose(pred, x[20:25], atol=1e-9)
    by_hand = [coef[0] + coef[1] * x[t - 1] + coef[2] * x[t - 2] for t in range(2, 32)]
    np.testing.assert_allclose(datasets.ar_predict(x, coef, start=2), by_hand, rtol=1e-12)


def test_ar_argument_errors():
    with pytest.raises(ValueError, match="at least 2 p \\+ 1 = 7"):
        datasets.ar_fit(np.arange(6.0), 3)
    with pytest.raises(ValueError, match="start must be an integer >= 2"):
        datasets.ar_predict(np.arange(6.0), [0.0, 1.0, 0.0], start=1)
    with pytest.raises(ValueError, match="series contains NaN"):
        datasets.ar_fit([1.0, np.nan, 2.0], 1)


# -- character-model baselines --------------------------------------------------------------------


def test_unigram_perplexity_by_hand():
    # counts 3, 1, 0 of 4; add-1 over V = 3: P = 4/7, 2/7, 1/7
    ppl = datasets.unigram_perplexity([0, 0, 0, 1], [0, 1, 2], vocab_size=3)
    assert ppl == pytest.approx((4 / 7 * 2 / 7 * 1 / 7) ** (-1 / 3), rel=1e-12)
    # a huge pseudo-count flattens the model to uniform: perplexity V
    assert datasets.unigram_perplexity([0, 0, 1], [2, 0], 5, k=1e12) == pytest.approx(5, 1e-9)
    # k = 0.5 (add-half)
    ppl = datasets.unigram_perplexity([0, 0, 0, 1], [1], vocab_size=2, k=0.5)
    assert ppl == pytest.approx(5 / 1.5, rel=1e-12)


def test_bigram_perplexity_by_hand():
    # train 0 1 0 1 1: bigrams 01, 10, 01, 11 -> n(0,.) = 2, n(1,.) = 2; V = 2, k = 1
    # P(1|0) = 3/4, P(0|1) = 2/4, P(1|1) = 2/4, P(0|0) = 1/4
    train, test = [0, 1, 0, 1, 1], [0, 0, 1, 1]  # transitions 00, 01, 11
    expected = (1 / 4 * 3 / 4 * 2 / 4) ** (-1 / 3)
    ppl = datasets.bigram_perplexity(train, test, vocab_size=2)
    assert ppl == pytest.approx(expected, rel=1e-12)
    assert datasets.bits_per_char(ppl) == pytest.approx(math.log2(expected), rel=1e-12)
    # a one-character training text has no bigrams: every transition 1 / V
    assert datasets.bigram_perplexity([1], [0, 1, 2], 3) == pytest.approx(3, rel=1e-12)


def test_bigram_matches_a_dense_count_table(rng):
    V = 7
    train, test = rng.integers(0, V, 500), rng.integers(0, V, 100)
    table = np.zeros((V, V))
    np.add.at(table, (train[:-1], train[1:]), 1)
    probs = (table + 0.3) / (table.sum(1, keepdims=True) + 0.3 * V)
    expected = np.exp(-np.log(probs[test[:-1], test[1:]]).mean())
    assert datasets.bigram_perplexity(train, test, V, k=0.3) == pytest.approx(expected, 1e-12)
    # the bigram model of a text with structure beats its unigram model
    text_ids, alphabet = datasets.encode_chars(datasets.stdlib_text(50_000))
    uni = datasets.unigram_perplexity(text_ids[:40_000], text_ids[40_000:], len(alphabet))
    bi = datasets.bigram_perplexity(text_ids[:40_000], text_ids[40_000:], len(alphabet))
    assert 1 < bi < uni < len(alphabet)


def test_perplexity_argument_errors():
    with pytest.raises(ValueError, match=r"test_ids must lie in 0\.\.2"):
        datasets.unigram_perplexity([0, 1], [3], vocab_size=3)
    with pytest.raises(TypeError, match="train_ids must be an integer array"):
        datasets.unigram_perplexity([0.0, 1.0], [1], vocab_size=3)
    with pytest.raises(ValueError, match="test_ids must be 1-d with at least 2"):
        datasets.bigram_perplexity([0, 1], [1], vocab_size=2)
    with pytest.raises(ValueError, match="k must be"):
        datasets.bigram_perplexity([0, 1], [1, 0], vocab_size=2, k=0)
    with pytest.raises(ValueError, match="perplexity must be"):
        datasets.bits_per_char(0.0)
