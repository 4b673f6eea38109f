"""Test doubles that are real servers: SendGrid's API over HTTP, an SMTP server, a throwaway CA.

Importable from any test (``from doubles.sendgrid import SendGridDouble``); the
pytest fixtures over them are in :mod:`doubles.fixtures`, registered in
tests/conftest.py.
"""
