"""The kernels' on-disk cache is keyed on every module of numrnn.kernels (``_cache.py``):
an edit to a helper in one module must make the cached kernels of every other module
stale, which Numba alone (keyed on each kernel's own file) does not."""

import shutil

import numpy as np
from numba.core import caching

import numrnn as nr
from numrnn.kernels import _cache, rnn


def test_kernels_use_the_package_locator():
    locator = rnn._forward_items._cache._impl._locator
    assert isinstance(locator, tuple(_cache.LOCATORS))
    numba_stamp, digest = locator.get_source_stamp()
    assert digest == _cache.sources_digest()
    assert numba_stamp == caching.InTreeCacheLocator.get_source_stamp(locator)
    # named, for NUMBA_CACHE_LOCATOR_CLASSES
    assert _cache.KernelsInTreeCacheLocator in _cache.LOCATORS


def test_functions_outside_the_package_keep_numba_locators(tmp_path):
    path = tmp_path / "elsewhere.py"
    path.write_text("def f():\n    return 1\n")
    namespace = {}
    exec(compile(path.read_text(), str(path), "exec"), namespace)
    for locator in _cache.LOCATORS:
        assert locator.from_function(namespace["f"], str(path)) is None


def test_digest_changes_with_any_module(tmp_path):
    for path in _cache._sources(_cache._HERE):
        shutil.copy(path, tmp_path / path.name)
    before = _cache.sources_digest(tmp_path)
    assert before == _cache.sources_digest(_cache._HERE)
    # an editor's lock link to nowhere is not a module
    (tmp_path / ".#linalg.py").symlink_to(tmp_path / "nowhere")
    assert _cache.sources_digest(tmp_path) == before
    # an edit in the same process (a reload) is seen: a helper, not the kernel's own file
    with open(tmp_path / "linalg.py", "a") as f:
        f.write("# edited\n")
    edited = _cache.sources_digest(tmp_path)
    assert edited != before
    (tmp_path / "new_cell.py").write_text("")  # a module added
    assert _cache.sources_digest(tmp_path) not in (before, edited)


def test_an_edit_elsewhere_makes_cached_kernels_stale(monkeypatch):
    """rnn.py's forward kernel, cached by a call, is found in the index under the package's
    digest and not under another one (what an edit to linalg.py or _math.py gives)."""
    model = nr.RNN(2, 3, seed=0)
    model.forward(np.zeros((2, 1, 2)))

    def cached_entries():
        index = caching.FunctionCache(rnn._forward_items.py_func)._cache_file._load_index()
        return len(index)

    assert cached_entries() > 0
    monkeypatch.setattr(_cache, "sources_digest", lambda: b"another source")
    assert cached_entries() == 0
