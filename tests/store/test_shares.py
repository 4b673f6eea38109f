"""Shares of a send, on SQLite and PostgreSQL: cut by members, each taken by one process at a
time, taken over only from a process that is gone."""

from __future__ import annotations

import itertools
import threading

import pytest
from helpers.members import add_members
from sqlalchemy import update

from mailer.errors import SendRefused
from mailer.store import SubscriberStore
from mailer.store.ledger import Ledger, new_owner
from mailer.store.shares import LAST_ID, Share, ShareRow, share_size

ISSUE = "2026-12-03-winter-connections"


@pytest.fixture
def ledger(store: SubscriberStore) -> Ledger:
    """The send's first process: it holds the lease and cut the audience, two members a share."""
    first = Ledger(store.engine)
    first.acquire(ISSUE, "sendgrid", new_owner())
    return first


def cut(store: SubscriberStore, ledger: Ledger, members: int, batch_size: int = 2) -> int:
    add_members(store, members)
    return ledger.shares.open(ISSUE, batch_size)


def take_all(ledger: Ledger, owner: str) -> list[Share]:
    taken = []
    while isinstance(share := ledger.shares.take(ISSUE, owner, owner), Share):
        taken.append(share)
    return taken


def test_shares_cover_every_member_and_everyone_who_joins_later(
    store: SubscriberStore, ledger: Ledger
) -> None:
    """Cut by counting members, not ids; the last share runs to the end of the id space."""
    assert 4 == cut(store, ledger, 7)  # 2 + 2 + 2 + 1
    shares = take_all(ledger, new_owner())
    spans = [share.span for share in shares]
    assert 0 == spans[0][0] and LAST_ID == spans[-1][1]
    assert all(a[1] + 1 == b[0] for a, b in itertools.pairwise(spans))
    ids = [member.id for member in store.list_subscribers()]
    assert [2, 2, 2, 1] == [sum(lo <= i <= hi for i in ids) for lo, hi in spans]


def test_about_24_shares_of_1000_to_50000_members() -> None:
    assert 1000 == share_size(5_000, 1000)
    assert 41_667 == share_size(1_000_000, 1000)
    assert 50_000 == share_size(10_000_000, 1000)


def test_processes_taking_shares_at_once_each_get_their_own(
    store: SubscriberStore, ledger: Ledger
) -> None:
    """Eight threads, each with its own connections and locks, as eight processes would."""
    count = cut(store, ledger, 40)
    taken: list[list[Share]] = []
    takers: list[Ledger] = []  # alive to the end: a taker let go is a process that died

    def taker() -> None:
        mine = Ledger(store.engine)
        takers.append(mine)
        taken.append(take_all(mine, new_owner()))

    threads = [threading.Thread(target=taker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    ids = [share.id for shares in taken for share in shares]
    assert count == len(ids) == len(set(ids))


def test_a_running_owners_share_is_not_taken_but_waited_for(
    store: SubscriberStore, ledger: Ledger
) -> None:
    """With every share taken by a process that runs, another gets False: wait, ask again."""
    cut(store, ledger, 3)
    running = Ledger(store.engine)
    first, last = take_all(running, "machine-a:1:aa")
    assert False is Ledger(store.engine).shares.take(ISSUE, "machine-b:2:bb", "machine-b:2:bb")
    assert not running.shares.done(first, "machine-a:1:aa")
    assert running.shares.done(last, "machine-a:1:aa")  # the last share: the send is over
    assert None is Ledger(store.engine).shares.take(ISSUE, "machine-b:2:bb", "machine-b:2:bb")


def test_a_dead_owners_share_is_taken_over_naming_it(
    store: SubscriberStore, ledger: Ledger
) -> None:
    """An owner whose lock ended (its process died) leaves its share to the next who looks,
    who is told whose rows in flight to settle; open shares wait until then."""
    cut(store, ledger, 4)
    dead = Ledger(store.engine)
    first = dead.shares.take(ISSUE, "machine-a:1:aa", "machine-a:1:aa")
    assert isinstance(first, Share)
    dead.shares._let_go(first.id)  # what the kernel or PostgreSQL does when a process dies
    other = Ledger(store.engine)
    again = other.shares.take(ISSUE, "machine-b:2:bb", "machine-b:2:bb")
    assert isinstance(again, Share)
    assert (first.id, "machine-a:1:aa") == (again.id, again.previous_owner)


def test_a_share_given_back_is_taken_again_naming_who_gave_it(
    store: SubscriberStore, ledger: Ledger
) -> None:
    cut(store, ledger, 3)
    stopping = Ledger(store.engine)
    share = stopping.shares.take(ISSUE, "machine-a:1:aa", "machine-a:1:aa")
    assert isinstance(share, Share)
    stopping.shares.give_back(share, "machine-a:1:aa")
    again = Ledger(store.engine).shares.take(ISSUE, "machine-b:2:bb", "machine-b:2:bb")
    assert isinstance(again, Share)
    assert (share.id, "machine-a:1:aa") == (again.id, again.previous_owner)


def test_a_claim_needs_the_share_its_members_are_in(store: SubscriberStore, ledger: Ledger) -> None:
    """A process whose share was taken from it (``--release``, or thought dead) claims nothing."""
    cut(store, ledger, 3)
    sender = Ledger(store.engine)
    share = sender.shares.take(ISSUE, "machine-a:1:aa", "machine-a:1:aa")
    assert isinstance(share, Share)
    ids = [member.id for member in store.list_subscribers()]
    claim = sender.claim(ISSUE, "general", ids[:1], "machine-a:1:aa", shares=[share.id])
    assert [ids[0]] == list(claim.claimed)
    with store.engine.begin() as connection:  # as --release does, or a takeover
        connection.execute(update(ShareRow).values(owner="released"))
    with pytest.raises(SendRefused, match="no longer holds the send"):
        sender.claim(ISSUE, "general", ids[1:2], "machine-a:1:aa", shares=[share.id])
