"""The subscriber store: members, their history and suppressed addresses, in SQL.

Open it with :func:`open_store`; everything else in mailer reads and writes the
list through the returned :class:`SubscriberStore`:

>>> import tempfile
>>> from mailer.store import MemberRecord, SubscriberStatus, open_store
>>> url = f"sqlite:///{tempfile.mkdtemp()}/mailer.db"
>>> with open_store(url) as store:
...     [ann, bo] = store.add(
...         [MemberRecord(email="ann@example.org"), MemberRecord(email="bo@example.org")],
...         source="doctest",
...     )
...     _ = store.set_status(ann.id, SubscriberStatus.bounced, reason="550", source="doctest")
...     [member.email for member in store.active()]
['bo@example.org']

The names below load on first use, so that importing the light modules of this
package (``mailer.store.models``) does not pull in SQLAlchemy and Alembic: the
command line's ``--help`` stays quick.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mailer.store.models import (
        EventKind,
        ImportCounts,
        MemberRecord,
        Subscriber,
        SubscriberEvent,
        SubscriberStatus,
    )
    from mailer.store.subscribers import SubscriberRef, SubscriberStore, open_store

__all__ = [
    "EventKind",
    "ImportCounts",
    "MemberRecord",
    "Subscriber",
    "SubscriberEvent",
    "SubscriberRef",
    "SubscriberStatus",
    "SubscriberStore",
    "open_store",
]

_HOMES = {
    "EventKind": "models",
    "ImportCounts": "models",
    "MemberRecord": "models",
    "Subscriber": "models",
    "SubscriberEvent": "models",
    "SubscriberStatus": "models",
    "SubscriberRef": "subscribers",
    "SubscriberStore": "subscribers",
    "open_store": "subscribers",
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'mailer.store' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"mailer.store.{home}"), name)
    globals()[name] = value
    return value
