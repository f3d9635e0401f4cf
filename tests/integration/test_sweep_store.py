"""The store a pinned sweep writes stays what it was: a refactor must not change results.

``tests/data/sweep_reference.nc`` holds the store of ``tests/data/sweep_reference.toml``
(three cells, two initializers, two seeds, a 2-layer bidirectional model, diagnostics
snapshots) as written before the restructure into ``nn/``, ``training/`` and ``sweep/``
(regenerated once since, when stores began to keep weights; see the config's header).
Everything but the floating-point values must be identical; the values must agree to
1e-12 relative, rounding differences carried through a few training steps (another CPU's
BLAS may round a product differently in the last bit; since the reference was written, a
tiny network's step products became loops with fused multiply-adds instead of BLAS calls:
the largest difference seen then was 1.04e-13 relative, on an element of 1e-4).
"""

import os

import numpy as np
import pytest
import xarray as xr

import numrnn as nr
from numrnn import sweep

pytestmark = pytest.mark.slow

DATA = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "data")


@pytest.mark.parametrize("batch", [None, 1])
def test_pinned_sweep_writes_the_reference_store(tmp_path, batch):
    out = str(tmp_path / "ref.zarr")
    config = os.path.join(DATA, "sweep_reference.toml")
    counts = sweep.run(config, out, workers=1, progress=False, batch=batch)
    assert counts == {"ok": 12, "diverged": 0, "failed": 0}
    got = nr.open(out)
    want = xr.open_dataset(os.path.join(DATA, "sweep_reference.nc")).load()
    assert got.attrs == want.attrs
    assert list(got.data_vars) == list(want.data_vars)
    for name in [*got.coords, *got.data_vars]:
        a, b = got[name], want[name]
        assert a.dims == b.dims and a.attrs == b.attrs, name
        if a.dtype.kind == "f":
            np.testing.assert_allclose(a.values, b.values, rtol=1e-12, atol=0, err_msg=name)
            assert (np.isnan(a.values) == np.isnan(b.values)).all(), name
        else:
            assert a.values.tolist() == b.values.tolist(), name
