"""Examples in docstrings are true: every module's doctests run and pass."""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

import mailer

MODULES = sorted(
    info.name
    for info in pkgutil.walk_packages(mailer.__path__, "mailer.")
    if ".migrations" not in info.name
)


@pytest.mark.parametrize("name", ["mailer", *MODULES])
def test_the_examples_run(name: str) -> None:
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS, verbose=False)
    assert 0 == result.failed


@pytest.mark.parametrize("name", ["mailer", "mailer.store", "mailer.transports"])
def test_the_package_examples_are_there(name: str) -> None:
    """The examples that show how to start are doctests, so they cannot rot unseen."""
    finder = doctest.DocTestFinder()
    assert [test for test in finder.find(importlib.import_module(name)) if test.examples]
