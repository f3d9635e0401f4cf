"""numrnn warmup: the arguments it refuses (a run is its docstring's example)."""

import pytest

import numrnn as nr


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"cells": ["lstmm"]}, ValueError, "cells must be one of"),
        ({"dtypes": ["float16"]}, TypeError, "dtypes must be 'float32' or 'float64'"),
        ({"jobs": 0}, ValueError, "jobs must be a positive integer"),
        ({"cells": []}, ValueError, "at least one cell and one dtype"),
    ],
)
def test_bad_arguments(kwargs, error, match):
    with pytest.raises(error, match=match):
        nr.warmup(progress=False, **kwargs)
