"""Sphinx configuration of the skvem documentation.

Build with ``make -C docs html`` (warnings are errors). The build never needs
the network: intersphinx is off unless ``SKVEM_DOCS_INTERSPHINX=1`` and the
gallery examples are rendered without running them unless
``SKVEM_DOCS_RUN_EXAMPLES=1`` (or ``-D plot_gallery=1``).
"""

import os
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
# Document the working tree, not whichever skvem happens to be installed.
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(HERE / "sphinxext"))

import skvem  # noqa: E402

project = "skvem"
author = "skvem developers"
copyright = "skvem developers"
version = release = skvem.__version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.intersphinx",
    "sphinx.ext.mathjax",
    "numpydoc",
    "sphinx_gallery.gen_gallery",
    "skvem_docs_cli",  # sphinxext/: the --help text of the skvem command
    "skvem_docs_refs",  # sphinxext/: link skvem objects by any importable path
]

templates_path = ["_templates"]
exclude_patterns = ["_build", "Thumbs.db", ".DS_Store", "**.ipynb_checkpoints"]
root_doc = "index"
default_role = "literal"

# -- autodoc / autosummary ---------------------------------------------------
autosummary_generate = True
autosummary_imported_members = False
autodoc_default_options = {"members": True, "inherited-members": True}
autodoc_typehints = "none"  # numpydoc's "Parameters" section says it better
autoclass_content = "class"

# -- numpydoc ----------------------------------------------------------------
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
numpydoc_attributes_as_param_list = True

# -- intersphinx -------------------------------------------------------------
# Off by default: fetching inventories needs the network, and an offline build
# must stay warning-free. Opt in for a published build.
intersphinx_mapping = {}
if os.environ.get("SKVEM_DOCS_INTERSPHINX") == "1":
    intersphinx_mapping = {
        "python": ("https://docs.python.org/3", None),
        "numpy": ("https://numpy.org/doc/stable", None),
        "sklearn": ("https://scikit-learn.org/stable", None),
        "torch": ("https://docs.pytorch.org/docs/stable", None),
        "PIL": ("https://pillow.readthedocs.io/en/stable", None),
    }

# -- sphinx-gallery ----------------------------------------------------------
# The examples train networks and may caption images: rendering them must not
# run them unless asked to.
_run_examples = os.environ.get("SKVEM_DOCS_RUN_EXAMPLES", "0") == "1"

sphinx_gallery_conf = {
    "examples_dirs": ["../examples"],
    "gallery_dirs": ["auto_examples"],
    "filename_pattern": r"/plot_",
    "plot_gallery": _run_examples,
    "doc_module": ("skvem",),
    "backreferences_dir": "gen_modules/backreferences",
    "download_all_examples": False,
    "remove_config_comments": True,
    "within_subsection_order": "skvem_docs_order.example_order",
    "abort_on_example_error": True,
    "show_memory": False,
    # sg_execution_times.rst lands in the source folder: only worth it when
    # the examples actually ran.
    "write_computation_times": _run_examples,
}

# -- HTML --------------------------------------------------------------------
html_theme = "pydata_sphinx_theme"
html_title = f"skvem {release}"
html_static_path = []
html_show_sourcelink = False
html_theme_options = {
    "navigation_with_keys": False,
    "show_toc_level": 2,
    "header_links_before_dropdown": 6,
    "navbar_end": ["theme-switcher", "navbar-icon-links"],
    "icon_links": [],
}
html_context = {"default_mode": "light"}


# -- members inherited from scikit-learn and torch -----------------------------
# The estimators inherit a dozen methods from scikit-learn's mixins. The
# everyday ones are documented; the rest (metadata routing, set_output, ...)
# point at labels of scikit-learn's own user guide, which do not exist here.
# The torch modules (AlignedNet) inherit all of nn.Module, whose docstrings are
# written for torch's own docs build: those are torch's to document.
_SKLEARN_MEMBERS_SHOWN = {"get_params", "set_params", "fit_transform", "fit_predict", "score"}


def _skip_inherited_members(app, what, name, obj, skip, options):
    module = getattr(obj, "__module__", None) or ""
    if module.startswith("sklearn.") and name not in _SKLEARN_MEMBERS_SHOWN:
        return True
    if module.startswith("torch."):
        return True
    return None


def setup(app):
    app.connect("autodoc-skip-member", _skip_inherited_members)
