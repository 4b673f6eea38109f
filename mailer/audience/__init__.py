"""Stage 3, the audience: which members get an issue, and which variant each gets.

* :mod:`~mailer.audience.segments`: the segment rules of ``mailer.toml``, and which
  segments a member is in (no database: it loads without SQLAlchemy).
* :mod:`~mailer.audience.plan`: the active members from the store, minus those the
  send ledger says already have the issue, paged and grouped by variant.
"""
