"""The public surface: ``stoic.__all__`` is sorted, importable and complete."""

from __future__ import annotations

import importlib
import pkgutil

import stoic

# Modules still being integrated are added here as they land.
READY = {
    "backoff",
    "batch",
    "bulkhead",
    "circuit_breaker",
    "config",
    "exceptions",
    "fallback",
    "groups",
    "pipeline",
    "rate_limit",
    "registry",
    "retry",
    "timeout",
}


def public_modules() -> list[str]:
    return [
        info.name
        for info in pkgutil.iter_modules(stoic.__path__)
        if not info.name.startswith("_")
        and info.name not in {"testing", "demo"}
        and info.name in READY
    ]


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
