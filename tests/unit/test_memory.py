"""numrnn.memory: glibc malloc settings."""

import platform
import subprocess
import sys


def test_reuse_freed_memory_switches_glibc_malloc():
    code = (
        "import numpy as np; from numrnn.memory import reuse_freed_memory as r; ok = r(); "
        "a = np.ones(2**23); del a; b = np.ones(2**23); print(ok, b.sum())"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    expected = "True" if platform.libc_ver()[0] == "glibc" else "False"
    assert out.stdout.split() == [expected, str(float(2**23))]
