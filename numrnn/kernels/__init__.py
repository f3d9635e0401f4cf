"""Compiled (Numba ``@njit``) time recurrences, one module per cell, forward and BPTT side by side.

Every kernel runs the whole time loop in one call; see ``rnn.py`` for the shared array
contract and ``numrnn/cells.py`` for the interface the models use.
"""
