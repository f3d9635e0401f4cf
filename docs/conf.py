"""Sphinx configuration of numrnn's documentation site.

Build, from the repository root:
``python -m sphinx -W --keep-going -b html docs docs/_build/html``.
Everything is local: no intersphinx, no remote images or scripts, no math renderer that
loads from the network (formulas are written as code).
"""

import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, ROOT)  # the numrnn of this checkout, also without an install
sys.path.insert(0, os.path.join(HERE, "_ext"))

import numrnn  # noqa: E402

project = "numrnn"
author = "the numrnn developers"
copyright = "the numrnn developers"  # noqa: A001
version = release = numrnn.__version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.viewcode",
    "numpydoc",
    "sphinxarg.ext",
    "numrnn_gallery",
]

exclude_patterns = ["_build", "api/generated/.*", "**/README.md"]
templates_path = ["_templates"]
root_doc = "index"
default_role = "code"
pygments_style = "sphinx"

# API reference: stub pages generated from the autosummary tables in api/*.rst
autosummary_generate = True
autosummary_imported_members = False
autodoc_default_options = {"member-order": "bysource"}
autodoc_typehints = "none"  # signatures stay short; types are in the docstrings
autodoc_preserve_defaults = True
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
numpydoc_xref_param_type = False
numpydoc_validation_checks = set()  # tests/unit/test_docstrings.py checks what we keep

# no network at build time: no intersphinx; MathJax is never needed (no math markup)
html_theme = "pydata_sphinx_theme"
html_title = f"numrnn {release}"
html_static_path = ["_static"]
html_css_files = ["numrnn.css"]
html_show_sourcelink = False
html_theme_options = {
    "navigation_with_keys": False,
    "show_toc_level": 2,
    "navbar_align": "left",
    "footer_start": ["copyright"],
    "footer_end": ["sphinx-version"],
    # no "on this page" column on the API pages: their examples need the width
    "secondary_sidebar_items": {
        "api/generated/*": [],
        **dict.fromkeys(["index", "theory", "guide/*", "gallery/*", "api/*"], ["page-toc"]),
    },
}
html_sidebars = {"index": [], "theory": []}  # pages without subpages: no empty navigation

# the gallery, run at build time: the demo and vanishing_exploding at full scale (seconds),
# the training experiments with --quick
numrnn_gallery_scripts = {
    "demo": [sys.executable, "-m", "numrnn.cli", "demo", "--out", "{out}/demo"],
    "vanishing_exploding": [sys.executable, "experiments/vanishing_exploding.py", "--out", "{out}"],
    "adding_le2015": [sys.executable, "experiments/adding_le2015.py", "--quick", "--out", "{out}"],
    "clipping": [sys.executable, "experiments/clipping.py", "--quick", "--out", "{out}"],
    "order_to_chaos": [sys.executable, "experiments/order_to_chaos.py", "--quick", "--out", "{out}"],
    "signal_propagation": [sys.executable, "experiments/signal_propagation.py", "--quick", "--out",
                           "{out}"],
    "pascanu2013": [sys.executable, "experiments/pascanu2013.py", "--quick", "--out", "{out}"],
    "copy_arjovsky2016": [sys.executable, "experiments/copy_arjovsky2016.py", "--quick", "--out",
                          "{out}"],
    "sunspots": [sys.executable, "experiments/sunspots.py", "--quick", "--out", "{out}"],
    "japanese_vowels": [sys.executable, "experiments/japanese_vowels.py", "--quick", "--out",
                        "{out}"],
    "char_lm": [sys.executable, "experiments/char_lm.py", "--quick", "--out", "{out}"],
}
