"""The public API: what `import mailer` offers people embedding it (as httpx tests its own)."""

from __future__ import annotations

import inspect

import pytest

import mailer


def test_all_is_sorted_and_complete() -> None:
    """__all__ lists every public name once, sorted, and nothing private."""
    assert sorted(set(mailer.__all__)) == mailer.__all__
    assert not [name for name in mailer.__all__ if name.startswith("_") and name != "__version__"]


@pytest.mark.parametrize("name", [name for name in mailer.__all__ if name != "__version__"])
def test_each_name_is_mailers_own(name: str) -> None:
    """Each exported name loads, is documented, and is defined inside mailer."""
    value = getattr(mailer, name)
    assert value.__module__.startswith("mailer.")
    assert inspect.getdoc(value)


def test_the_names_are_in_dir() -> None:
    assert set(mailer.__all__) <= set(dir(mailer))


def test_an_unknown_name_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no attribute 'send'"):
        mailer.send  # noqa: B018


def test_the_version_is_the_packages() -> None:
    from importlib.metadata import version

    assert version("mailer") == mailer.__version__


def test_every_error_is_a_mailer_error() -> None:
    """Embedding code can catch MailerError for everything mailer raises on purpose."""
    from mailer import errors

    raised = [
        value
        for value in vars(errors).values()
        if inspect.isclass(value)
        and issubclass(value, Exception)
        and value.__module__ == "mailer.errors"
    ]
    assert len(raised) > 10
    assert all(issubclass(error, mailer.MailerError) for error in raised)
