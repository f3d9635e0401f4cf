"""The user guide's pages with examples run as doctests (the others show code only)."""

import doctest
import os

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.mark.parametrize("page", ["sequences.rst"])
def test_guide_examples(page):
    flags = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE
    result = doctest.testfile(os.path.join(ROOT, "docs", "guide", page), module_relative=False,
                              optionflags=flags)  # fmt: skip
    assert result.attempted > 0 and result.failed == 0
