"""Sweeps: grids of training runs (initializers, cells, sizes, seeds) into one Zarr store.

config     the TOML config: validation, the grid's points, building a point
point      running a point, or a group of points as one ensemble
store      the Zarr store: template, one region per point, what is pending
executors  in this process, a local process pool, or a dask.distributed cluster

A point that diverges or raises is recorded with its status and message and the sweep
goes on; a sweep killed at any moment and run again finishes only what is pending, and
runs again the points it finds damaged. Only a store numrnn made is resumed or replaced,
by one sweep at a time, and only that sweep's workers write into it (see ``store``).
"""

from .config import EXAMPLE, ConfigError, dims, load_config, points
from .executors import run
from .point import groups, run_group, run_point
from .store import STATUS, StoreError, create_store, pending, template, write_point

# the store's locking, tokens and checks (lock, claim, scan, verify) are numrnn.sweep.store's
__all__ = ["EXAMPLE", "STATUS", "ConfigError", "StoreError", "create_store", "dims", "groups",
           "load_config", "pending", "points", "run", "run_group", "run_point", "template",
           "write_point"]  # fmt: skip
