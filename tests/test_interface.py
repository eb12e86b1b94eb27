"""The public surface: __all__ complete, sorted, documented; no lambdas exported."""

import importlib
import inspect
import pkgutil
import subprocess
import sys
from pathlib import Path

import conduit

FIXED_NAMES = Path(__file__).resolve().parent / "fixtures" / "contract-names.txt"


def test_all_is_sorted_and_unique():
    assert list(conduit.__all__) == sorted(set(conduit.__all__))


def test_every_export_exists_has_a_docstring_and_a_real_name():
    for name in conduit.__all__:
        obj = getattr(conduit, name)
        assert inspect.getdoc(obj), f"conduit.{name} has no docstring"
        assert getattr(obj, "__name__", name) != "<lambda>", name


def test_all_lists_every_public_name_in_the_facade():
    public = {
        n for n, v in vars(conduit).items() if not n.startswith("_") and not inspect.ismodule(v)
    }
    assert public <= set(conduit.__all__)


def test_every_module_declares_all():
    for info in pkgutil.walk_packages(conduit.__path__, "conduit."):
        module = importlib.import_module(info.name)
        if not info.ispkg:
            assert hasattr(module, "__all__"), info.name


def test_foundation_names_of_the_contract_are_importable():
    for line in FIXED_NAMES.read_text().splitlines():
        if line.startswith("foundation:"):
            missing = [n for n in line.split(":", 1)[1].split() if not hasattr(conduit, n)]
            assert not missing


def test_import_is_light():
    """`import conduit` must not import httpx or numpy (they load with the modules needing them)."""
    code = "import sys, conduit; print(sorted(m for m in ('httpx', 'numpy') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_no_submodule_shadows_a_public_name():
    """Importing every submodule must not replace a facade name with a module."""
    for info in pkgutil.walk_packages(conduit.__path__, "conduit."):
        importlib.import_module(info.name)
    for name in conduit.__all__:
        assert not inspect.ismodule(getattr(conduit, name)), name
