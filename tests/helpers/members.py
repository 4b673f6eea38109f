"""Members for tests, in the three variants of the sample issue.

Member number ``n`` is in ``youth`` when n % 3 == 0 (the tag youth-loneliness), in
``wales`` when n % 3 == 1 (the region Wales), and in no segment of the issue
(``general``) otherwise, so a send of the sample issue has three variants.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mailer.store import MemberRecord, Subscriber, SubscriberStore

if TYPE_CHECKING:
    import psycopg


def member(n: int) -> MemberRecord:
    """Member number n, in the youth, wales or general variant by n % 3."""
    tags: tuple[str, ...] = ("youth-loneliness",) if n % 3 == 0 else ()
    region = "Wales" if n % 3 == 1 else "Yorkshire and the Humber"
    return MemberRecord(
        email=f"member{n:03d}@example.org",
        name=f"Member{n:03d} Tester",
        organisation=f"Group {n} & Co",
        region=region,
        tags=tags,
    )


def add_members(store: SubscriberStore, count: int, start: int = 0) -> list[Subscriber]:
    """Members number ``start`` to ``start + count - 1``, added to the store."""
    return store.add([member(n) for n in range(start, start + count)], source="test")


def member_emails(count: int) -> set[str]:
    """The addresses of members number 0 to ``count - 1``."""
    return {f"member{n:03d}@example.org" for n in range(count)}


def bulk_members(url: str, count: int) -> None:
    """Members number 0 to ``count - 1`` (as :func:`member` makes them), written by one
    INSERT ... SELECT on PostgreSQL: a list of 200,000 in seconds, for the scale tests.
    Not through the store: what is under test is sending to them. Then ANALYZE, as the
    store's import does after a large one: the planner's choices are the ones a real
    list gets (freshly written rows with no statistics made the claim scan them all)."""
    import psycopg

    from helpers.databases import libpq_url

    with psycopg.connect(libpq_url(url), autocommit=True) as connection:
        connection.execute(
            """
            INSERT INTO subscribers (email, email_key, name, organisation, region, tags,
                attributes, status, status_changed_at, status_reason, created_at, updated_at,
                link_version)
            SELECT e, e, 'Member' || lpad(n::text, greatest(3, length(n::text)), '0') || ' Tester',
                'Group ' || n || ' & Co',
                CASE WHEN n %% 3 = 1 THEN 'Wales' ELSE 'Yorkshire and the Humber' END,
                CASE WHEN n %% 3 = 0 THEN '["youth-loneliness"]'::jsonb ELSE '[]'::jsonb END,
                '{}'::jsonb, 'active', now(), '', now(), now(), 0
            FROM generate_series(0, %s - 1) AS n,
                LATERAL (SELECT 'member' || lpad(n::text, greatest(3, length(n::text)), '0') || '@example.org' AS e) AS a
            """,
            (count,),
        )
        connection.execute("ANALYZE subscribers")


def plain_members(connection: psycopg.Connection[Any], count: int) -> None:
    """Members 1 to ``count``, every tenth unsubscribed, written straight into PostgreSQL
    over ``connection`` (psycopg): the list of the tests that read query plans."""
    connection.execute(
        "INSERT INTO subscribers (email, email_key, name, organisation, region, tags,"
        " attributes, status, status_changed_at, status_reason, created_at, updated_at)"
        " SELECT 'm' || g || '@example.org', 'm' || g || '@example.org', 'M ' || g,"
        " 'Org', 'Wales', '[]', '{}',"
        " CASE WHEN mod(g, 10) = 0 THEN 'unsubscribed' ELSE 'active' END,"
        " now(), '', now(), now() FROM generate_series(1, %s) g",
        (count,),
    )
