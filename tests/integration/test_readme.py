"""Every Python snippet in the README runs as written (in a fresh process and folder)."""

import importlib.util
import os
import re
import subprocess
import sys

import pytest

pytestmark = pytest.mark.slow

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
with open(os.path.join(ROOT, "README.md")) as f:
    SNIPPETS = re.findall(r"```python\n(.*?)```", f.read(), flags=re.S)


def test_the_readme_has_snippets():
    assert len(SNIPPETS) >= 2


@pytest.mark.parametrize("i", range(len(SNIPPETS)))
def test_snippet_runs(tmp_path, i):
    if "to_torch" in SNIPPETS[i]:
        pytest.importorskip("torch")
    if "datasets.japanese_vowels" in SNIPPETS[i] and importlib.util.find_spec("sktime") is None:
        pytest.skip("needs sktime (numrnn[data])")
    env = {**os.environ, "MPLBACKEND": "Agg"}
    # snippets name the repository's files (experiments/...) as a user in a checkout would
    os.symlink(os.path.join(ROOT, "experiments"), tmp_path / "experiments")
    proc = subprocess.run([sys.executable, "-c", SNIPPETS[i]], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=600)  # fmt: skip
    assert proc.returncode == 0, f"README snippet {i} failed:\n{SNIPPETS[i]}\n{proc.stderr}"
