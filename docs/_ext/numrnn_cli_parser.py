"""The ``numrnn`` command's argparse parser, for sphinx-argparse (docs/api/cli.rst).

:func:`numrnn.cli.main` builds its parser and parses in one function; :func:`parser` runs
it with ``parse_args`` replaced by a stand-in that hands the parser back, so the page
always shows the commands and options that ``main`` has, and nothing runs.
"""

import argparse


class _Captured(Exception):
    def __init__(self, parser):
        super().__init__("parser captured")
        self.parser = parser


def parser():
    from numrnn import cli

    def capture(self, *args, **kwargs):
        raise _Captured(self)

    original = argparse.ArgumentParser.parse_args
    argparse.ArgumentParser.parse_args = capture
    try:
        cli.main([])
    except _Captured as got:
        return got.parser
    finally:
        argparse.ArgumentParser.parse_args = original
    raise RuntimeError("numrnn.cli.main returned without parsing its arguments")
