"""numrnn._options: nr.set_options globally and as a with block."""

import numpy as np
import pytest

import numrnn as nr
from numrnn.tasks import Adding


def test_defaults_and_with_block_restores():
    assert nr.get_option("eval_chunk") == 64
    assert nr.get_option("cuda_path") == "auto"
    with nr.set_options(eval_chunk=3, cuda_path="stepwise"):
        assert nr.get_option("eval_chunk") == 3
        assert nr.get_option("cuda_path") == "stepwise"
    assert nr.get_option("eval_chunk") == 64
    assert nr.get_option("cuda_path") == "auto"


def test_restored_after_an_error():
    with pytest.raises(RuntimeError), nr.set_options(eval_chunk=5):
        raise RuntimeError
    assert nr.get_option("eval_chunk") == 64


def test_global_set_and_reset():
    nr.set_options(eval_chunk=7)
    try:
        assert nr.get_option("eval_chunk") == 7
    finally:
        nr.set_options(eval_chunk=64)


def test_bad_options_are_refused_and_change_nothing():
    known = "'eval_chunk', 'compile_notice', 'compile_ahead', 'keep_heap', 'products', 'cuda_path'"
    with pytest.raises(ValueError, match=f"option must be one of {known}"):
        nr.set_options(chunk=3)
    with pytest.raises(ValueError, match="cuda_path must be one of 'auto', 'persistent', "
                                         "'stepwise', got 'fast'"):  # fmt: skip
        nr.set_options(eval_chunk=8, cuda_path="fast")
    with pytest.raises(TypeError, match="eval_chunk must be a positive integer"):
        nr.set_options(eval_chunk=2.5)
    with pytest.raises(ValueError, match="products must be one of 'auto', 'panels', 'blas'"):
        nr.set_options(products="mkl")
    assert nr.get_option("eval_chunk") == 64
    with pytest.raises(ValueError, match="option must be one of"):
        nr.get_option("nope")


def test_eval_chunk_does_not_change_test_losses():
    """Evaluation in pieces of any size gives each member its own test loss (to rounding:
    the pieces only change how many sequences one pass holds)."""

    def run(chunk):
        model = nr.RNN(2, 4, output_size=1, readout="last", seed=0)
        with nr.set_options(eval_chunk=chunk):
            return nr.train(model, Adding(6), 3, 4, ("sgd", {"lr": 0.1}), seed=0,
                            eval_every=1, progress=False)  # fmt: skip

    a, b = run(64), run(7)
    np.testing.assert_allclose(a.test_loss, b.test_loss, rtol=1e-12)
