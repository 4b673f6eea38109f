"""The web app behind ``mailer serve``: see :mod:`mailer.web.app`."""

from mailer.web.app import create_app

__all__ = ["create_app"]
