"""Sphinx extension: run the gallery's scripts before the build reads its pages.

``numrnn_gallery_scripts`` (conf.py) maps a name to a command line; ``{out}`` in it is
replaced by ``gallery/_quick/<name>`` (relative to the repository root, where the
command runs). The command's standard output is kept as ``gallery/_quick/<name>.txt``
next to the files it writes, for the gallery pages to include. A script runs again only
when its output is older than the script or any module of numrnn; a script that fails
fails the build, with the end of its standard error.
"""

import os
import subprocess
import time

from sphinx.errors import ExtensionError
from sphinx.util import logging

logger = logging.getLogger(__name__)


def _newest_source(root, script):
    paths = [os.path.join(root, script)] if os.path.exists(os.path.join(root, script)) else []
    for folder, _, files in os.walk(os.path.join(root, "numrnn")):
        paths += [os.path.join(folder, f) for f in files if f.endswith(".py")]
    return max(os.path.getmtime(p) for p in paths)


def run_scripts(app):
    root = os.path.dirname(app.srcdir)
    quick = os.path.join(app.srcdir, "gallery", "_quick")
    for name, command in app.config.numrnn_gallery_scripts.items():
        out_rel = os.path.relpath(os.path.join(quick, name), root)
        os.makedirs(os.path.join(root, out_rel), exist_ok=True)
        log = os.path.join(quick, f"{name}.txt")
        argv = [a.replace("{out}", out_rel) for a in command]
        script = next((a for a in argv if a.endswith(".py")), "")
        if os.path.exists(log) and os.path.getmtime(log) > _newest_source(root, script):
            logger.info(f"gallery: {name} is up to date")
            continue
        logger.info(f"gallery: running {' '.join(argv[1:])}")
        env = {
            **os.environ,
            "MPLBACKEND": "Agg",
            "PYTHONPATH": os.pathsep.join([root, os.environ.get("PYTHONPATH", "")]),
        }
        t0 = time.perf_counter()
        proc = subprocess.run(argv, cwd=root, env=env, capture_output=True, text=True)
        if proc.returncode != 0:
            tail = "\n".join(proc.stderr.splitlines()[-20:])
            raise ExtensionError(f"gallery script {name} failed ({proc.returncode}):\n{tail}")
        with open(log, "w") as f:
            f.write(proc.stdout.strip() + "\n")
        logger.info(f"gallery: {name} took {time.perf_counter() - t0:.1f} s")


def setup(app):
    app.add_config_value("numrnn_gallery_scripts", {}, "env")
    app.connect("builder-inited", run_scripts)
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}
