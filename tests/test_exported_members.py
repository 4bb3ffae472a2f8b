"""The public surface: ``stoic.__all__`` is sorted, importable and complete."""

from __future__ import annotations

import ast
import importlib
import pkgutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import stoic


def public_modules() -> list[str]:
    """The public submodules that export names of stoic's own (``stoic.backoff``, ...)."""
    return [
        info.name
        for info in pkgutil.iter_modules(stoic.__path__)
        if not info.name.startswith("_")
        and info.name not in {"testing", "demo", "integrations", "stores"}
    ]


def private_packages() -> list[str]:
    """The strategies' private modules and packages: their ``__all__`` is public through stoic."""
    internal = {"_classify", "_clock", "_configuration", "_context", "_events", "_validate"}
    return [
        info.name
        for info in pkgutil.iter_modules(stoic.__path__)
        if info.name.startswith("_") and info.name not in internal and info.name != "__init__"
    ]


def test_every_public_name_of_the_private_modules_is_exported() -> None:
    missing = []
    for module_name in private_packages():
        module = importlib.import_module(f"stoic.{module_name}")
        for name in getattr(module, "__all__", ()):
            if name in {"P", "T", "Frozen", "kinds", "set_field", "strategy_class", "via_call"}:
                continue  # typing helpers and the strategy registry, internal
            if getattr(stoic, name, None) is not getattr(module, name):
                missing.append(f"stoic.{module_name}.{name}")
    assert missing == []


def test_all_is_sorted() -> None:
    assert stoic.__all__ == sorted(stoic.__all__)


def test_all_has_no_duplicates() -> None:
    assert len(stoic.__all__) == len(set(stoic.__all__))


def test_every_exported_name_exists() -> None:
    for name in stoic.__all__:
        assert hasattr(stoic, name), name


def test_every_public_module_name_is_exported() -> None:
    missing = []
    for module_name in public_modules():
        module = importlib.import_module(f"stoic.{module_name}")
        for name in getattr(module, "__all__", ()):
            if getattr(stoic, name, None) is not getattr(module, name):
                missing.append(f"stoic.{module_name}.{name}")
    assert missing == []


def test_nothing_private_is_exported() -> None:
    assert not [name for name in stoic.__all__ if name.startswith("_")]


# -- lazy loading: ``import stoic`` imports no submodule until a name is used --------------------


def _fresh(code: str) -> str:
    """Run ``code`` in a fresh interpreter; return its standard output."""
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout.strip()


def _type_checking_imports() -> dict[str, tuple[str, ...]]:
    """The ``if TYPE_CHECKING:`` imports of ``stoic/__init__.py``, as submodule -> names."""
    tree = ast.parse(Path(stoic.__file__).read_text())
    block = next(
        node
        for node in tree.body
        if isinstance(node, ast.If) and getattr(node.test, "id", None) == "TYPE_CHECKING"
    )
    return {
        node.module.removeprefix("stoic."): tuple(alias.name for alias in node.names)
        for node in block.body
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("stoic.")
    }


def test_lazy_table_type_checking_imports_and_all_name_the_same() -> None:
    table = stoic._HOMES
    assert _type_checking_imports() == table
    assert sorted(name for names in table.values() for name in names) == stoic.__all__


def test_import_stoic_imports_no_submodule_and_not_asyncio() -> None:
    loaded = _fresh(
        """
        import sys
        before = set(sys.modules)
        import stoic
        print(sorted(set(sys.modules) - before - {"stoic", "__future__"}))
        """
    )
    assert loaded == "[]"  # not even ``typing``


def test_a_name_imports_only_its_own_submodule_and_what_it_needs() -> None:
    loaded = _fresh(
        """
        import sys
        from stoic import Backoff
        print(sorted(m for m in sys.modules if m.startswith("stoic")))
        """
    )
    assert "stoic.backoff" in loaded
    assert "stoic._circuit_breaker" not in loaded
    assert "stoic._pipeline" not in loaded


def test_no_module_shares_a_name_with_an_exported_name() -> None:
    import importlib.util

    shared = [name for name in stoic.__all__ if importlib.util.find_spec(f"stoic.{name}")]
    assert shared == []


def test_retry_and_timeout_are_the_functions_whatever_is_imported_first() -> None:
    kinds = _fresh(
        """
        import stoic._retry, stoic._timeout, stoic._pipeline
        import stoic
        print(type(stoic.retry).__name__, type(stoic.timeout).__name__, stoic.retry.__module__)
        """
    )
    assert kinds == "function function stoic._retry.factory"


def test_star_import_binds_every_exported_name() -> None:
    count = _fresh(
        """
        import stoic
        namespace = {}
        exec("from stoic import *", namespace)
        print(sum(namespace[name] is getattr(stoic, name) for name in stoic.__all__))
        """
    )
    assert count == str(len(stoic.__all__))


def test_an_unknown_name_raises_attribute_error() -> None:
    with pytest.raises(AttributeError, match="has no attribute 'Retyr'"):
        stoic.Retyr  # noqa: B018


def test_dir_lists_every_exported_name() -> None:
    assert set(stoic.__all__) <= set(dir(stoic))


def test_submodules_are_attributes_as_with_an_eager_import() -> None:
    found = _fresh(
        """
        import stoic
        print(stoic.exceptions.__name__, stoic.backoff.__name__, "backoff" in dir(stoic))
        """
    )
    assert found == "stoic.exceptions stoic.backoff True"


def test_a_loaded_but_unbound_submodule_is_still_an_attribute() -> None:
    found = _fresh(
        """
        import stoic
        stoic.exceptions
        del stoic.exceptions  # loaded, no longer bound: the import system will not bind it
        print(hasattr(stoic, "exceptions"), stoic.exceptions.__name__)
        """
    )
    assert found == "True stoic.exceptions"
