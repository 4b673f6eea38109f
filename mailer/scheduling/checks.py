"""What a slot will need, checked now: one list for the scheduler, ``mailer serve`` and ``mailer doctor``.

A slot fails two weeks after a typo unless the typo is found at start. Each
check returns a :class:`Check`: its name, whether it passed, and a sentence that
says what is wrong and what to do. :func:`run_checks` runs those a role needs:

``scheduler``  everything a slot needs: MAILER_TRANSPORT chosen explicitly, its
               keys present and well-formed, an ``https`` base URL for real mail,
               the database reachable and its schema known, the templates
               rendering the next ready issue, the editors' addresses, the notice channel
``serve``      ``mailer serve`` beyond this machine: MAILER_TRANSPORT chosen explicitly
               (it sends sign-up confirmations), its keys, the secret key, an ``https``
               base URL for real mail, the database, the webhook key (well-formed if set),
               PROMETHEUS_MULTIPROC_DIR (a writable folder, if set)
``serve-loopback``  the same on a loopback address, where the outbox is the default
               (the demo) and, with it, the public development key will do
``doctor``     all of them, then the From domain's SPF, DKIM and DMARC records
               (:mod:`mailer.scheduling.dnschecks`)

:func:`require` turns failed checks into one ConfigError naming each.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from email_validator import EmailNotValidError, validate_email

from mailer.config import Newsletter, Settings, TransportName
from mailer.errors import ConfigError, MailerError

__all__ = ["Check", "Role", "require", "run_checks"]

Role = Literal["scheduler", "serve", "serve-loopback", "doctor"]


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    message: str
    checked: bool = True  # False: could not be made here (offline, or not mailer's to check)

    def to_json(self) -> dict[str, object]:
        return {"check": self.name, "ok": self.ok, "checked": self.checked, "message": self.message}


def _passed(name: str, message: str) -> Check:
    return Check(name, True, message)


def _failed(name: str, message: str) -> Check:
    return Check(name, False, message)


def transport_chosen(settings: Settings, newsletter: Newsletter) -> Check:
    return _transport_chosen(
        settings,
        "the scheduler sends real issues, so it never falls back to the outbox. Set it to "
        "sendgrid or smtp (or outbox, to write files on purpose)",
    )


def transport_chosen_for_serve(settings: Settings, newsletter: Newsletter) -> Check:
    return _transport_chosen(
        settings,
        "beyond this machine, mailer serve sends real sign-up confirmations, so it falls back "
        "to the outbox only on a loopback address (--host 127.0.0.1). Set it to sendgrid or "
        "smtp (or outbox, on purpose)",
    )


def _transport_chosen(settings: Settings, why: str) -> Check:
    """MAILER_TRANSPORT given explicitly (never the outbox by default); ``why`` it must be."""
    if "transport" not in settings.model_fields_set:
        return _failed("MAILER_TRANSPORT", f"MAILER_TRANSPORT is not set: {why}")
    return _passed("MAILER_TRANSPORT", f"{settings.transport}")


def transport_settings(settings: Settings, newsletter: Newsletter) -> Check:
    """The transport opens (its keys are there), and a SendGrid key looks like one."""
    from mailer.transports import open_transport

    name = "transport"
    try:
        open_transport(settings).close()
    except MailerError as error:
        return _failed(name, str(error))
    key = settings.sendgrid_api_key
    if settings.transport == TransportName.sendgrid and key is not None:
        value = key.get_secret_value().strip()
        if not value.startswith("SG.") or len(value) < 10 or any(c.isspace() for c in value):
            return _failed(
                name,
                "SENDGRID_API_KEY does not look like a SendGrid API key (they start with 'SG.' "
                "and hold no spaces): copy it again from SendGrid (Settings > API Keys)",
            )
    return _passed(name, f"{settings.transport} configured")


def secret_key(settings: Settings, newsletter: Newsletter) -> Check:
    from mailer.tokens import secret_keys

    name = "MAILER_SECRET_KEY"
    try:
        keys = secret_keys(settings)
    except ConfigError as error:
        return _failed(name, str(error))
    if not keys:
        if settings.transport == TransportName.outbox:
            return _passed(name, "not set: the outbox signs links with the development key")
        return _failed(
            name,
            "MAILER_SECRET_KEY is not set: links in real mail must be signed. Set it to a "
            "long random string (python -c 'import secrets; print(secrets.token_urlsafe(32))')",
        )
    return _passed(name, f"{len(keys)} key(s)")


def secret_key_set(settings: Settings, newsletter: Newsletter) -> Check:
    """serve needs a key whatever the transport: it checks the links' tokens."""
    found = secret_key(settings, newsletter)
    if found.ok and settings.secret_key is None:
        return _failed(found.name, "MAILER_SECRET_KEY is not set: the web app needs it")
    return found


def base_url(settings: Settings, newsletter: Newsletter) -> Check:
    name = "MAILER_BASE_URL"
    if settings.transport != TransportName.outbox and not settings.base_url.startswith("https://"):
        return _failed(
            name,
            f"MAILER_BASE_URL is {settings.base_url}: real mail needs an https:// address, "
            "since Gmail and Yahoo honour one-click unsubscribe over HTTPS only",
        )
    return _passed(name, settings.base_url)


def database(settings: Settings, newsletter: Newsletter) -> Check:
    from sqlalchemy.exc import SQLAlchemyError

    from mailer.store.database import HEAD_REVISION, current_revisions, head_revisions, make_engine

    name = "database"
    try:
        engine = make_engine(settings.database_url)
    except MailerError as error:
        return _failed(name, str(error))
    where = engine.url.render_as_string(hide_password=True)
    try:
        with engine.connect() as connection:
            current = current_revisions(connection)
    except SQLAlchemyError as error:
        return _failed(name, f"cannot reach {where}: {getattr(error, 'orig', error)}")
    finally:
        engine.dispose()
    if current == {HEAD_REVISION}:
        return _passed(name, f"{where}, schema {HEAD_REVISION}")
    if current - head_revisions() and not current <= _known_revisions():
        return _failed(
            name,
            f"{where} is at schema {', '.join(sorted(current))}, which this mailer does not "
            "know: a newer mailer upgraded it. Upgrade mailer",
        )
    return _passed(name, f"{where}, brought up to schema {HEAD_REVISION} on first use")


def _known_revisions() -> set[str]:
    from alembic.script import ScriptDirectory

    from mailer.store.database import alembic_config

    return {s.revision for s in ScriptDirectory.from_config(alembic_config()).walk_revisions()}


def templates(settings: Settings, newsletter: Newsletter) -> Check:
    """The next slot's issue, if it is ready, renders in every variant; else the templates exist."""
    from mailer.render import render_issue
    from mailer.scheduling.issues import IssueState, read_catalogue
    from mailer.scheduling.slots import next_after

    name = "templates"
    folder = newsletter.templates_dir
    missing = [t for t in ("email.mjml.j2", "email.txt.j2") if not (folder / t).is_file()]
    if missing:
        return _failed(
            name, f"{folder} has no {', '.join(missing)}: set templates_dir in mailer.toml"
        )
    if newsletter.schedule is None:
        return _passed(name, f"{folder}")
    slot = next_after(newsletter.schedule, dt.datetime.now(dt.UTC))
    found = read_catalogue(newsletter).for_day(slot.date)
    if found.state != IssueState.ready or found.issue is None:
        return _passed(name, f"{folder} (the next slot's issue is {found.state})")
    keys = [frozenset(), *(frozenset({s}) for s in sorted(found.issue.segments_named()))]
    try:
        render_issue(found.issue, newsletter, keys)
    except MailerError as error:
        return _failed(name, f"the next slot's issue {found.issue.slug} does not render: {error}")
    return _passed(name, f"{folder}; {found.issue.slug} renders")


def editors(settings: Settings, newsletter: Newsletter) -> Check:
    name = "editors"
    schedule = newsletter.schedule
    if schedule is None:
        return _passed(name, "no [schedule]: no notices")
    bad = []
    for address in schedule.editors:
        try:
            validate_email(str(address), check_deliverability=False)
        except EmailNotValidError as error:
            bad.append(f"{address}: {error}")
    if bad:
        return _failed(name, "[schedule] editors: " + "; ".join(bad))
    return _passed(name, ", ".join(str(e) for e in schedule.editors))


def notice_channel(settings: Settings, newsletter: Newsletter) -> Check:
    from urllib.parse import urlsplit

    name = "MAILER_NOTICE_URL"
    if settings.notice_url is None:
        return _passed(name, "not set: notices go through the newsletter's transport only")
    url = settings.notice_url.get_secret_value()
    if urlsplit(url).scheme not in ("smtp", "smtps", "http", "https") or not urlsplit(url).hostname:
        return _failed(name, "MAILER_NOTICE_URL must be smtp(s)://host... or http(s)://host/...")
    return _passed(name, f"{urlsplit(url).scheme}://{urlsplit(url).hostname}")


def webhook_key(settings: Settings, newsletter: Newsletter) -> Check:
    from mailer.events.sendgrid import load_public_key

    name = "MAILER_SENDGRID_WEBHOOK_PUBLIC_KEY"
    if not settings.sendgrid_webhook_public_key:
        return _passed(name, "not set: the Event Webhook is refused until it is")
    try:
        load_public_key(settings.sendgrid_webhook_public_key)
    except MailerError as error:
        return _failed(name, str(error))
    return _passed(name, "a valid key")


def metrics_folder(settings: Settings, newsletter: Newsletter) -> Check:
    """PROMETHEUS_MULTIPROC_DIR, when set, is a folder the web app can write its counts to."""
    import os
    from pathlib import Path

    name = "PROMETHEUS_MULTIPROC_DIR"
    folder = os.environ.get(name)
    if not folder:
        return _passed(name, "not set: /metrics counts this process's requests")
    if not Path(folder).is_dir() or not os.access(folder, os.W_OK | os.X_OK):
        return _failed(
            name,
            f"PROMETHEUS_MULTIPROC_DIR is {folder}, which is not a folder this user can write "
            "to: create it (empty) before starting, or unset it",
        )
    return _passed(name, f"{folder}: counts shared between processes")


CheckFunction = Callable[[Settings, Newsletter], Check]
ROLES: dict[Role, tuple[CheckFunction, ...]] = {
    "scheduler": (
        transport_chosen,
        transport_settings,
        secret_key,
        base_url,
        database,
        templates,
        editors,
        notice_channel,
    ),
    "serve": (
        transport_chosen_for_serve,
        transport_settings,
        secret_key_set,
        base_url,
        database,
        webhook_key,
        metrics_folder,
    ),
    "serve-loopback": (
        transport_settings,
        secret_key,
        base_url,
        database,
        webhook_key,
        metrics_folder,
    ),
    "doctor": (
        transport_settings,
        secret_key,
        base_url,
        database,
        templates,
        editors,
        notice_channel,
        webhook_key,
        metrics_folder,
    ),
}


def run_checks(settings: Settings, newsletter: Newsletter, role: Role) -> list[Check]:
    checks = [check(settings, newsletter) for check in ROLES[role]]
    if role == "doctor":
        from mailer.scheduling.dnschecks import dns_checks

        checks += dns_checks(settings, newsletter)
    return checks


def require(settings: Settings, newsletter: Newsletter, role: Role) -> list[Check]:
    """The role's checks; ConfigError naming every one that failed."""
    checks = run_checks(settings, newsletter, role)
    failed = [check for check in checks if not check.ok]
    if failed:
        what = {
            "scheduler": "the scheduler",
            "serve": "mailer serve",
            "serve-loopback": "mailer serve",
            "doctor": "mailer",
        }[role]
        raise ConfigError(
            f"{what} will not start: "
            + "; ".join(f"{check.name}: {check.message}" for check in failed)
            + " (`mailer doctor` lists every check)"
        )
    return checks
