"""Docstrings of the public API: every public function and class has a NumPy-style
docstring whose Parameters section names the signature's parameters in order (stumpy keeps
such a check), a Returns section when it returns a value, and an Examples section (the
doctests, run by ``.ci/run``); and every public name appears in the API reference
(``docs/api/*.rst``), so that the reference and this check cover the same names.
"""

import ast
import dataclasses
import importlib
import inspect
import os
import re
import textwrap
import warnings

import pytest
from numpydoc.docscrape import ClassDoc, FunctionDoc

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
API_DOCS = os.path.join(ROOT, "docs", "api")

#: The public modules: ``numrnn`` and every module it exposes (``nr.diagnostics``, ...),
#: plus the two that the command line and the README name (demo, memory).
PUBLIC_MODULES = (
    "numrnn", "numrnn.nn", "numrnn.nn.init", "numrnn.nn.params", "numrnn.nn.tape",
    "numrnn.diagnostics", "numrnn.results", "numrnn.training", "numrnn.tasks",
    "numrnn.losses", "numrnn.optim", "numrnn.schedules", "numrnn.plots", "numrnn.sweep",
    "numrnn.analysis", "numrnn.report", "numrnn.demo", "numrnn.memory", "numrnn.cuda",
    "numrnn.cli", "numrnn.weights", "numrnn.meanfield", "numrnn.datasets", "numrnn.precompile",
)  # fmt: skip
#: Public names of those modules that are implementation details of another public name.
PRIVATE = {"numrnn.nn.tape.LayerTape"}


def _public_names(module):
    """``__all__``, or the functions and classes the module defines without a leading _."""
    names = getattr(module, "__all__", None)
    if names is None:
        names = [n for n, v in vars(module).items() if not n.startswith("_")
                 and getattr(v, "__module__", None) == module.__name__]  # fmt: skip
    return names


def public_objects():
    """(name, object, is_method) of every public function, class and method, each object
    once."""
    seen, out = set(), []
    for modname in PUBLIC_MODULES:
        module = importlib.import_module(modname)
        for name in _public_names(module):
            obj = getattr(module, name)
            qualname = f"{modname}.{name}"
            if inspect.ismodule(obj) or not callable(obj) or id(obj) in seen:
                continue
            if qualname in PRIVATE:
                continue
            seen.add(id(obj))
            out.append((qualname, obj, False))
            if inspect.isclass(obj):
                for attr, member in vars(obj).items():
                    func = getattr(member, "__func__", member)  # classmethod, staticmethod
                    if attr.startswith("_") or not inspect.isfunction(func):
                        continue
                    if id(func) not in seen:
                        seen.add(id(func))
                        out.append((f"{qualname}.{attr}", func, True))
    return out


def _signature_names(obj):
    """Parameter names of ``obj``'s signature as a docstring writes them (``*args``,
    ``**kwargs``), without ``self``/``cls``; None when it has no signature."""
    try:
        sig = inspect.signature(obj)
    except (TypeError, ValueError):
        return None
    names = []
    for p in sig.parameters.values():
        prefix = {p.VAR_POSITIONAL: "*", p.VAR_KEYWORD: "**"}.get(p.kind, "")
        names.append(prefix + p.name)
    if names and names[0] in ("self", "cls") and not inspect.isclass(obj):
        names = names[1:]
    return names


def _doc_names(section):
    """Names in a Parameters section; ``a, b : int`` documents both a and b."""
    return [n.strip() for p in section for n in p.name.split(",") if n.strip()]


def _returns_value(func):
    """Whether ``func``'s own body has a ``return`` with a value (nested functions aside)."""
    try:
        source = textwrap.dedent(inspect.getsource(func))
    except (OSError, TypeError):
        return False
    tree = ast.parse(source).body[0]

    def walk(node):
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda,
                                  ast.ClassDef)):  # fmt: skip
                continue
            if isinstance(child, ast.Return) and child.value is not None:
                if not (isinstance(child.value, ast.Constant) and child.value.value is None):
                    return True
            if walk(child):
                return True
        return False

    return walk(tree)


def problems(name, obj, method=False):
    """What is wrong with ``obj``'s docstring, as a list of sentences (empty: nothing)."""
    if not inspect.getdoc(obj):
        return [f"{name} has no docstring"]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # numpydoc warns about sections it cannot parse
        try:
            doc = ClassDoc(obj) if inspect.isclass(obj) else FunctionDoc(obj)
        except Exception as err:  # noqa: BLE001 - any parse failure is the finding
            return [f"{name}: numpydoc cannot parse the docstring ({err})"]
    out = []
    expected = _signature_names(obj)
    section = doc["Parameters"] + doc["Other Parameters"]
    if inspect.isclass(obj) and dataclasses.is_dataclass(obj) and not section:
        section = doc["Attributes"]  # records returned to users: their fields
    documented = _doc_names(section)
    if expected is not None and documented != expected:
        out.append(f"{name}: the docstring's Parameters {documented} differ from the "
                   f"signature's {expected} (names, in order)")  # fmt: skip
    if not inspect.isclass(obj) and _returns_value(obj) and not (doc["Returns"] or
                                                                 doc["Yields"]):  # fmt: skip
        out.append(f"{name} returns a value but its docstring has no Returns section")
    if not method and not doc["Examples"]:
        out.append(f"{name} has no Examples section")
    return out


PUBLIC = public_objects()


@pytest.mark.parametrize("name, obj, method", PUBLIC, ids=[n for n, _, _ in PUBLIC])
def test_docstring_matches_signature(name, obj, method):
    assert problems(name, obj, method=method) == []


def _documented():
    """The objects the API reference lists: autosummary entries, resolved in the
    ``currentmodule`` in force where they appear; autoclass members follow their class."""
    objects = set()
    for page in sorted(os.listdir(API_DOCS)):
        if not page.endswith(".rst"):
            continue
        current, in_table = None, False
        with open(os.path.join(API_DOCS, page)) as f:
            for line in f:
                m = re.match(r"\.\. currentmodule:: (\S+)", line)
                if m:
                    current = m.group(1)
                if line.startswith(".. "):
                    in_table = line.startswith(".. autosummary::")
                    continue
                entry = line.strip()
                if not in_table or not entry or entry.startswith(":"):
                    continue
                if not line.startswith("   "):
                    in_table = False
                    continue
                path = f"{current}.{entry}" if current else entry
                modname, _, attr = path.rpartition(".")
                try:
                    owner = importlib.import_module(modname)
                except ModuleNotFoundError:  # a class's attribute: module.Class.name
                    modname, _, cls = modname.rpartition(".")
                    owner = getattr(importlib.import_module(modname), cls)
                obj = getattr(owner, attr)
                objects.add(id(obj))
                if inspect.isclass(obj):
                    for base in inspect.getmro(obj):
                        objects.update(id(getattr(m, "__func__", m)) for m in vars(base).values())
    return objects


def test_every_public_name_is_in_the_api_reference():
    documented = _documented()
    missing = [name for name, obj, _ in PUBLIC if id(obj) not in documented]
    assert missing == [], f"public names missing from docs/api/*.rst: {missing}"


def test_the_check_finds_a_docstring_that_disagrees():
    def f(a, b, *args, c=1, **kwargs):
        """Do something.

        Parameters
        ----------
        b : int
        a : int
        *args : more
        c : int
        **kwargs : the rest

        Returns
        -------
        int

        Examples
        --------
        >>> 1
        1
        """
        return a

    (found,) = problems("f", f)
    assert "['b', 'a', '*args', 'c', '**kwargs']" in found
    assert "['a', 'b', '*args', 'c', '**kwargs']" in found
    f.__doc__ = f.__doc__.replace("b : int\n        a : int", "a, b : int")
    f.__doc__ = f.__doc__.split("Returns")[0]
    assert problems("f", f) == [
        "f returns a value but its docstring has no Returns section",
        "f has no Examples section",
    ]
