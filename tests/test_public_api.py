"""The flat public namespace: every name documented, classes shown where they are imported from."""

from __future__ import annotations

import inspect

import pytest

import fedpack

PUBLIC = [name for name in fedpack.__all__ if not name.startswith("__")]


@pytest.mark.parametrize("name", PUBLIC)
def test_public_name_has_a_docstring(name: str) -> None:
    obj = getattr(fedpack, name)
    if callable(obj) or inspect.isclass(obj):
        assert inspect.getdoc(obj), f"fedpack.{name} has no docstring"


@pytest.mark.parametrize("name", [n for n in PUBLIC if inspect.isclass(getattr(fedpack, n))])
def test_public_classes_are_shown_as_fedpack_names(name: str) -> None:
    cls = getattr(fedpack, name)
    if getattr(cls, "__origin__", None) is not None:  # a type alias such as NDArrays
        return
    assert cls.__module__ == "fedpack"
    assert f"{cls.__module__}.{cls.__qualname__}" == f"fedpack.{name}"


def test_an_error_in_a_traceback_reads_fedpack_packing_error() -> None:
    assert repr(fedpack.PackingError("x")) == "PackingError('x')"
    assert fedpack.PackingError.__module__ + ".PackingError" == "fedpack.PackingError"
