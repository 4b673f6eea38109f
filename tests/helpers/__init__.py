"""What the tests share, imported as ``helpers.<module>`` (tests/ is on sys.path: pyproject's
``pythonpath``). Fixtures are in the conftest.py files; these modules hold plain code.

Plugins, registered for the whole suite by tests/conftest.py:

* :mod:`helpers.databases`: ``database_url`` (SQLite and PostgreSQL), ``postgres_server``,
  ``postgres_schema_url``; ``BACKENDS``, :func:`~helpers.databases.postgres_schema`.
* :mod:`helpers.browser`: ``browser``, Debian's headless Chromium under Playwright.

For any test:

* :mod:`helpers.project`: ``ROOT`` (the project folder), ``copy_project``, ``SAMPLE_ISSUE``,
  ``RENDER_SAMPLE``, ``BASE_URL``.
* :mod:`helpers.members`: ``member(n)`` in the sample issue's three variants,
  ``add_members``, ``member_emails``.
* :mod:`helpers.outbox`: reading what the outbox transport wrote: ``read_eml``,
  ``outbox_files``, ``outbox_folders``, ``recipients``.
* :mod:`helpers.owners`: ``dead_owner()``, a lease or claim owner whose process is gone.
* :mod:`helpers.events`: SendGrid's Event Webhook: ``sg_event``, ``body_of``, ``at``,
  a ``Signer`` for signed batches, ``logged_effects``.

For one stage's tests:

* :mod:`helpers.sending`: ``Sending`` (a send as `mailer send` makes it), ``AfterEachBatch``.
* :mod:`helpers.scheduling`: ``Project`` (a project folder with a [schedule]),
  ``schedule_toml``, ``london``, ``both_databases``.
* :mod:`helpers.web`: ``Web`` and ``LiveServer`` (the app under a real uvicorn), ``snapshot``.
* :mod:`helpers.studio`: ``Studio``, ``start_studio`` (the studio on a copy of the project).
* :mod:`helpers.history`: the report tests' known history of two issues and its numbers.
* :mod:`helpers.oracle`: each message as the email package builds it, which the
  transports' MessageTemplate must match.

The doubles (SendGrid's API, an SMTP server, a throwaway CA) are in tests/doubles/.
"""
