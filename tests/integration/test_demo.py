"""numrnn.demo: the main demo runs, prints its table and writes its result and figure."""

import os

import numpy as np
import pytest

import numrnn as nr
from numrnn import demo

pytestmark = pytest.mark.slow


def test_demo_writes_table_result_and_figure(tmp_path, capsys):
    prefix = str(tmp_path / "demo")
    ds = demo.run(out_prefix=prefix, T=100, batch=4, seed=0)
    out = capsys.readouterr().out
    assert out.splitlines()[0].startswith("||ds_T/ds_t||_2 at lag")
    assert all(case in out for case in ds["case"].values)
    assert os.path.getsize(f"{prefix}.png") > 10_000
    saved = nr.open(f"{prefix}.nc")
    assert saved["jacobian_norm"].dims == ("case", "batch", "time")
    np.testing.assert_allclose(saved["spectral_radius"].values[:3], [0.5, 1.0, 2.0], rtol=1e-12)
    geo = np.exp(np.log(saved["jacobian_norm"]).mean("batch"))
    lag50 = geo.isel(time=100 - 1 - 50).values
    # radius 0.5 vanishes, radius 2 explodes, in between in order (the README's table)
    assert lag50[0] < 1e-10 < lag50[1] < 1 < lag50[2]
    assert demo.table(geo).count("\n") == len(ds["case"]) + 1
