"""Property-based fuzzing of the public entry points (tests/fuzz/fuzz_public_api.py), run in
a subprocess: a segfault or abort there fails this test instead of killing the test run."""

import os
import subprocess
import sys

import pytest

pytestmark = pytest.mark.slow
pytest.importorskip("hypothesis")

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_public_entry_points_give_results_or_named_errors():
    target = os.path.join(ROOT, "tests", "fuzz", "fuzz_public_api.py")
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                           "-p", "no:randomly", target], capture_output=True, text=True, cwd=ROOT,
                          timeout=600)  # fmt: skip
    assert proc.returncode == 0, (
        f"exit {proc.returncode} (negative: killed by a signal)\n{proc.stdout[-6000:]}\n"
        f"{proc.stderr[-3000:]}"
    )
