"""Numba's on-disk cache of the kernels, keyed on all of this package's sources.

Numba marks a cached kernel stale when its own source file changes, but a kernel's
machine code also holds the helpers it calls from other modules (``linalg``'s products,
``_math``'s exp and tanh, ``_config``'s constants). An edit to ``linalg.py`` alone left
``rnn.py``'s cached kernels running the old products: a ``git pull`` into an editable
install would do the same, silently. Here every kernel's source stamp is a hash of every
module of this package, so any edit recompiles them all (the ``numrnn warmup`` of a
changed checkout); an installed release never changes and keeps its cache.

Numba chooses a cache locator per function from ``CacheImpl._locator_classes``; the
locators added here take the functions defined in this package and differ from Numba's
own only in their stamp. Numba's cache directory rules (``NUMBA_CACHE_DIR``, beside the
sources, the user-wide cache) are unchanged.
"""

import functools
import hashlib
import pathlib

from numba.core import caching

_HERE = pathlib.Path(__file__).resolve().parent


@functools.cache
def sources_digest(folder=_HERE):
    """SHA-256 of the names and contents of the ``*.py`` files in ``folder``, sorted."""
    h = hashlib.sha256()
    for path in sorted(pathlib.Path(folder).glob("*.py")):
        h.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return h.digest()


def _package_locator(base):
    """``base`` (a Numba locator backed by a source file) for this package's functions,
    stamped with :func:`sources_digest`; None (the next locator) for any other function."""

    class Locator(base):
        def get_source_stamp(self):
            return sources_digest()

        @classmethod
        def from_function(cls, py_func, py_file):
            if pathlib.Path(py_file).resolve().parent != _HERE:
                return None
            return super().from_function(py_func, py_file)

    Locator.__name__ = Locator.__qualname__ = f"Kernels{base.__name__.lstrip('_')}"
    return Locator


def _install():
    """Put the package's locators first (older Numba releases spell the classes with a
    leading underscore). Returns the locators added: none if Numba no longer has them."""
    impl = getattr(caching, "CacheImpl", None) or getattr(caching, "_CacheImpl", None)
    names = ("UserProvidedCacheLocator", "InTreeCacheLocator", "UserWideCacheLocator")
    bases = [getattr(caching, n, None) or getattr(caching, "_" + n, None) for n in names]
    if impl is None or None in bases:
        return []
    ours = [_package_locator(base) for base in bases]
    impl._locator_classes[:0] = ours
    return ours


LOCATORS = _install()
