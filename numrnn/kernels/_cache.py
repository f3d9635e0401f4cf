"""Numba's on-disk cache of the kernels, keyed on all of this package's sources.

Numba marks a cached kernel stale when its own source file changes, but a kernel's
machine code also holds the helpers it calls from other modules (``linalg``'s products,
``_math``'s exp and tanh, ``_config``'s constants). An edit to ``linalg.py`` alone left
``rnn.py``'s cached kernels running the old products: a ``git pull`` into an editable
install would do the same, silently. Here every kernel's source stamp also holds a hash of
every module of this package, so any edit recompiles them all (the ``numrnn warmup`` of a
changed checkout); an installed release never changes and keeps its cache.

Numba chooses a cache locator per function from ``CacheImpl._locator_classes``; the
locators added here take the functions defined in this package and differ from Numba's
own only in their stamp. Numba's cache directory rules (``NUMBA_CACHE_DIR``, beside the
sources, the user-wide cache) are unchanged. Not covered: a package imported from a zip
file (Numba's zip locator, stamped per file, takes it), and a list of locators set in
``NUMBA_CACHE_LOCATOR_CLASSES``, which replaces Numba's list; name the classes below there,
e.g. ``numrnn.kernels._cache.KernelsInTreeCacheLocator``.
"""

import functools
import hashlib
import pathlib

from numba.core import caching

_HERE = pathlib.Path(__file__).resolve().parent


def _sources(folder):
    """The package's modules: regular ``*.py`` files (not an editor's ``.#name.py`` lock
    links, which may point nowhere)."""
    return sorted(p for p in pathlib.Path(folder).glob("*.py")
                  if p.is_file() and not p.name.startswith("."))  # fmt: skip


@functools.cache
def _digest(files):
    h = hashlib.sha256()
    for name, path, _, _ in files:
        h.update(name.encode() + b"\0" + pathlib.Path(path).read_bytes() + b"\0")
    return h.digest()


def sources_digest(folder=_HERE):
    """SHA-256 of the names and contents of the modules in ``folder``, sorted by name.

    Memoised on each file's name, modification time and size, as Numba memoises its own
    source hashes: a module edited and reloaded in a running process is hashed again.
    """
    files = []
    for path in _sources(folder):
        st = path.stat()
        files.append((path.name, str(path), st.st_mtime_ns, st.st_size))
    return _digest(tuple(files))


def _package_locator(base):
    """``base`` (a Numba locator backed by a source file) for this package's functions,
    stamped with Numba's own stamp and :func:`sources_digest`; None (the next locator)
    for any other function."""

    class Locator(base):
        def get_source_stamp(self):
            try:
                return super().get_source_stamp(), sources_digest()
            except OSError:  # sources unreadable (a frozen app without them): Numba's own
                return super().get_source_stamp()

        @classmethod
        def from_function(cls, py_func, py_file):
            if pathlib.Path(py_file).resolve().parent != _HERE:
                return None
            return super().from_function(py_func, py_file)

    Locator.__name__ = Locator.__qualname__ = f"Kernels{base.__name__.lstrip('_')}"
    Locator.__module__ = __name__
    return Locator


def _install():
    """Put the package's locators first, once (older Numba releases spell the classes
    with a leading underscore). Returns them: none if Numba no longer has the classes."""
    impl = getattr(caching, "CacheImpl", None) or getattr(caching, "_CacheImpl", None)
    names = ("UserProvidedCacheLocator", "InTreeCacheLocator", "UserWideCacheLocator")
    bases = [getattr(caching, n, None) or getattr(caching, "_" + n, None) for n in names]
    if impl is None or None in bases:
        return []
    impl._locator_classes[:] = [c for c in impl._locator_classes
                                if getattr(c, "__module__", None) != __name__]  # fmt: skip
    ours = [_package_locator(base) for base in bases]
    impl._locator_classes[:0] = ours
    return ours


LOCATORS = _install()
# by name, for NUMBA_CACHE_LOCATOR_CLASSES
globals().update({locator.__name__: locator for locator in LOCATORS})
