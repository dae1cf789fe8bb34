"""Sphinx configuration of the genreclf documentation.

Build (warnings are errors)::

    .venv/bin/python -m sphinx -W --keep-going -b html docs docs/_build/html

The API reference is generated from the package's numpydoc docstrings:
``api.rst`` asks autosummary for the ``genreclf`` package with the
``package.rst`` template, which lists every name of ``genreclf.__all__`` (one
page each, under the name users import) and every public module (each
module page lists the names the module itself defines). An object that
``genreclf`` re-exports is documented once, on its ``genreclf.<name>`` page,
and the module pages link to it. No network access is needed: there is no
intersphinx mapping.
"""

import importlib
import inspect
import os
import pkgutil
import re
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# Document the package of this checkout, whatever is installed.
sys.path.insert(0, str(ROOT))
# Figures are never drawn during the build, but importing the tracking code
# may import matplotlib: keep it off any display.
os.environ.setdefault("MPLBACKEND", "Agg")

import genreclf  # noqa: E402

# -- Project -------------------------------------------------------------------

project = "genreclf"
author = "the genreclf developers"
copyright = "the genreclf developers"
version = release = genreclf.__version__

# -- Extensions ----------------------------------------------------------------

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "numpydoc",
]

templates_path = ["_templates"]
exclude_patterns = ["_build"]
root_doc = "index"
default_role = "literal"  # `text` in prose is code, as in the README
smartquotes = False  # defaults such as pad="zeros" read as typed

# autosummary writes one page per object into generated/ (git-ignored). It
# never deletes a page, so a module renamed or removed from the package would
# leave a stale page that no longer imports: start every build from an empty
# folder.
shutil.rmtree(Path(__file__).resolve().parent / "generated", ignore_errors=True)
autosummary_generate = True
autosummary_imported_members = False

autodoc_default_options = {"member-order": "bysource"}
autodoc_typehints = "none"  # the docstrings give the types, numpydoc style

# Class members are documented by autodoc (the class template), not by a
# second autosummary table that numpydoc would add inside each docstring.
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False

# -- What the API reference lists ---------------------------------------------


def _public_modules(package):
    """Return the dotted names of the package's public modules, sorted.

    A module is public when no part of its dotted name starts with an
    underscore (this also leaves out ``genreclf.__main__``, which would run
    the command line when imported).
    """
    names = []
    for info in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
        if any(part.startswith("_") for part in info.name.split(".")):
            continue
        names.append(info.name)
    return sorted(names)


def _top_level_names(package):
    """Return the names of ``package.__all__`` that autodoc can document."""
    return [name for name in package.__all__ if not name.startswith("__")]


def _home_module(package, name, modules):
    """Return the public module that defines ``package.name``, or None.

    Functions and classes carry their ``__module__``; a data object (a list,
    a dict) belongs to the module whose source assigns it at top level.
    """
    obj = getattr(package, name)
    home = getattr(obj, "__module__", None)
    if isinstance(home, str) and not isinstance(obj, (list, dict, tuple, str)):
        return home if home in modules else None
    assignment = re.compile(rf"^{re.escape(name)}\s*[:=]", re.MULTILINE)
    for modname in modules:
        module = importlib.import_module(modname)
        if getattr(module, name, None) is obj and assignment.search(
            inspect.getsource(module)
        ):
            return modname
    return None


def _aliases_by_module(package, modules, names):
    """Map each public module to the names of ``package.__all__`` it defines.

    Those objects are documented once, under the name users import
    (``genreclf.<name>``); their module's page links to that page instead of
    documenting them a second time.
    """
    by_module = {}
    for name in names:
        home = _home_module(package, name, modules)
        if home is not None:
            by_module.setdefault(home, []).append(name)
    return by_module


def _reexports(package, modules, names, by_module):
    """Map each public module to the documented names it imports from elsewhere.

    ``genreclf.model`` imports ``GenreCNN`` from ``genreclf.cnn``,
    ``genreclf.tracking`` imports the functions of its submodules: their pages say so and link to
    the one page of each object (``genreclf.<name>`` for the public names,
    else ``<defining module>.<name>``).
    """
    defined = {
        (modname, name) for modname, found in by_module.items() for name in found
    }
    reexports = {}
    for modname in modules:
        module = importlib.import_module(modname)
        for name in getattr(module, "__all__", ()):
            obj = getattr(module, name, None)
            if (modname, name) in defined or inspect.ismodule(obj):
                continue
            home = getattr(obj, "__module__", None)
            if name in names and obj is getattr(package, name):
                target = f"{package.__name__}.{name}"
            elif home in modules and home != modname:
                target = f"{home}.{getattr(obj, '__name__', name)}"
            else:
                continue  # defined here (documented below) or not documented
            reexports.setdefault(modname, []).append(target)
    return reexports


PUBLIC_MODULES = _public_modules(genreclf)
TOP_LEVEL = _top_level_names(genreclf)

ALIASES_BY_MODULE = _aliases_by_module(genreclf, PUBLIC_MODULES, TOP_LEVEL)

autosummary_context = {
    "public_modules": PUBLIC_MODULES,
    "top_level": TOP_LEVEL,
    "aliases_by_module": ALIASES_BY_MODULE,
    "reexports": _reexports(genreclf, PUBLIC_MODULES, TOP_LEVEL, ALIASES_BY_MODULE),
}


def _skip_routing_methods(app, what, name, obj, skip, options):
    """Leave scikit-learn's generated metadata-routing setters out.

    scikit-learn adds ``set_fit_request``, ``set_score_request``, ... to
    every estimator class; they belong to scikit-learn's API (and their
    docstrings refer to its own glossary), not to genreclf's.
    """
    if "RequestMethod" in getattr(obj, "__qualname__", ""):
        return True
    return None


def setup(app):
    """Connect the documentation's event handlers."""
    app.connect("autodoc-skip-member", _skip_routing_methods)


# -- HTML ----------------------------------------------------------------------

html_theme = "alabaster"
html_static_path = ["_static"]
html_title = f"genreclf {release}"
html_theme_options = {
    "description": "Music-genre classification: audio -> MFCC -> CNN ensemble, "
    "tracked in MLflow",
    "fixed_sidebar": True,
}
