"""Name-to-factory registries: cells, initializers, optimizers, tasks, losses.

One mechanism for every "look it up by name" in numrnn (pynndescent's ``named_distances``):
a :class:`Registry` is a dict whose failed look-ups raise a ``ValueError`` listing the
known names, and whose :meth:`~Registry.create` checks keyword arguments against the
factory's signature before calling it, naming what it does not take.
"""

import inspect


class Registry(dict):
    """A ``dict`` of name -> factory for one kind of thing (``what``: "optimizer", ...).

    Examples
    --------
    >>> shapes = Registry("shape", {"square": lambda side: side * side})
    >>> shapes.create("square", side=3)
    9
    >>> shapes.lookup("circle")
    Traceback (most recent call last):
    ...
    ValueError: unknown shape 'circle'; known: square
    """

    def __init__(self, what, entries=()):
        super().__init__(entries)
        self.what = what

    def lookup(self, name):
        """The entry called ``name``; ValueError listing the known names if there is none."""
        if not isinstance(name, str) or name not in self:
            raise ValueError(f"unknown {self.what} {name!r}; known: {', '.join(sorted(self))}")
        return self[name]

    def create(self, name, /, **kwargs):
        """Call the factory ``name`` with ``kwargs``.

        Raises
        ------
        ValueError for an unknown name; TypeError naming an argument the factory does not
        take, or a required one that is missing, with the accepted ones.
        """
        factory = self.lookup(name)
        signature = inspect.signature(factory)
        accepted = ", ".join(signature.parameters) or "no arguments"
        unknown = sorted(set(kwargs) - set(signature.parameters))
        if unknown:
            raise TypeError(
                f"{self.what} {name!r} got unknown argument(s) {unknown}; accepted: {accepted}"
            )
        try:
            signature.bind(**kwargs)
        except TypeError as err:
            raise TypeError(f"{self.what} {name!r} takes ({accepted}): {err}") from None
        return factory(**kwargs)
