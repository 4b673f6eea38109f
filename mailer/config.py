"""Configuration: deployment settings from the environment, newsletter settings from mailer.toml.

Two models, one for each source:

* :class:`Settings` holds what differs between deployments and what is secret
  (database URL, transport, keys). It comes from ``MAILER_*`` environment
  variables and an optional ``.env`` file, never from the repository.
* :class:`Newsletter` holds what editors decide (name, sender, postal address,
  segments, schedule). It lives in ``mailer.toml`` at the project root, in git.
"""

from __future__ import annotations

import datetime as dt
import difflib
import ipaddress
import os
import tomllib
from enum import StrEnum
from pathlib import Path
from typing import Annotated
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    AliasChoices,
    BaseModel,
    ConfigDict,
    EmailStr,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict

from mailer.errors import ConfigError, display_path
from mailer.headersafety import HeaderLine

# The longest local part a bounce address may have: SMTP's 64, less a '+' and the longest
# VERP token (mailer.verp.MAX_LOCAL_PART, which a test keeps equal).
MAX_BOUNCE_LOCAL_PART = 29


def is_loopback(host: str) -> bool:
    """Whether a host is this machine's own (localhost, 127.0.0.0/8, ::1): never on the network."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class TransportName(StrEnum):
    outbox = "outbox"
    smtp = "smtp"
    sendgrid = "sendgrid"


class CaptchaProvider(StrEnum):
    """The CAPTCHA services the sign-up form can verify against."""

    turnstile = "turnstile"
    hcaptcha = "hcaptcha"
    friendly_captcha = "friendly-captcha"


class LogFormat(StrEnum):
    text = "text"
    json = "json"


class LogLevel(StrEnum):
    debug = "DEBUG"
    info = "INFO"
    warning = "WARNING"
    error = "ERROR"


class Settings(BaseSettings):
    """Deployment settings, each overridden by the environment variable named in its alias."""

    model_config = SettingsConfigDict(
        env_prefix="MAILER_", env_file=".env", extra="ignore", populate_by_name=True
    )

    config_path: Path = Field(
        Path("mailer.toml"),
        description="Path of the newsletter settings file (MAILER_CONFIG_PATH).",
    )
    database_url: str = Field(
        "sqlite:///subscribers/mailer.db",
        description="SQLAlchemy URL of the subscriber store; SQLite by default, PostgreSQL by URL.",
    )
    transport: TransportName = Field(
        TransportName.outbox, description="How mail leaves: outbox (files), smtp or sendgrid."
    )
    outbox_dir: Path = Field(
        Path("outbox"), description="Where the outbox transport writes .eml files."
    )
    smtp_url: SecretStr | None = Field(
        None,
        description="smtp://user:pass@host:587?starttls=true (or smtps://) for the smtp transport; "
        "secret, since it holds the password.",
    )
    smtp_ca_file: Path | None = Field(
        None,
        description="A PEM file of CA certificates to trust for the SMTP server instead of the "
        "system's, e.g. for a relay with a private CA. The certificate is always verified.",
    )
    bounce_address: EmailStr | None = Field(
        None,
        description="Where bounces go, e.g. bounces@news.example.org: each message's envelope "
        "sender becomes bounces+<token>@news.example.org (VERP), naming the member and the "
        "issue, and List-Unsubscribe gets a mailto: beside the link.",
    )
    bounce_mailbox: SecretStr | None = Field(
        None,
        description="The mailbox bounces arrive in, read by `mailer bounces fetch` and the "
        "scheduler: imaps://user:pass@host/INBOX, imap://... (STARTTLS), pop3s://..., "
        "pop3://... (STLS) or maildir:///abs/path; secret, since it holds the password.",
    )
    bounce_ca_file: Path | None = Field(
        None,
        description="A PEM file of CA certificates to trust for the bounce mailbox's server "
        "instead of the system's. The certificate is always verified.",
    )
    bounce_poll_interval: int = Field(
        300,
        ge=10,
        description="Seconds between the scheduler's reads of the bounce mailbox.",
    )
    bounce_processed_folder: str | None = Field(
        None,
        min_length=1,
        description="IMAP or Maildir folder that bounces, complaints and unsubscribe mails "
        "are moved to once applied; unset, they are deleted (POP3 has no folders: deleted "
        "when unset, left on the server when set).",
    )
    bounce_other_folder: str | None = Field(
        None,
        min_length=1,
        description="IMAP or Maildir folder for the mail mailer leaves alone (auto-replies, "
        "people writing); unset, it stays where it is, unread. Never deleted.",
    )
    send_rate: float = Field(
        0, ge=0, description="Messages per second a transport sends at most; 0 means no limit."
    )
    send_timeout: float = Field(
        30,
        gt=0,
        description="Seconds to wait for an SMTP server or SendGrid before giving up on a request.",
    )
    send_processes: int = Field(
        1,
        ge=1,
        le=16,
        description="Processes a send shares the list between (each with its own connection); "
        "2 on a two-core machine roughly doubles the speed of a large send.",
    )
    sendgrid_api_key: SecretStr | None = Field(
        None,
        validation_alias=AliasChoices("SENDGRID_API_KEY", "MAILER_SENDGRID_API_KEY"),
        description="SendGrid API key (SENDGRID_API_KEY).",
    )
    sendgrid_api_url: str = Field(
        "https://api.sendgrid.com",
        description="SendGrid API base URL; tests point it at a local double.",
    )
    sendgrid_webhook_public_key: str | None = Field(
        None, description="The Event Webhook verification key, base64 DER, as SendGrid shows it."
    )
    sendgrid_webhook_max_age: int = Field(
        86400,
        ge=0,
        description="Seconds a webhook signature timestamp may be old; 0 turns the check off.",
    )
    soft_bounce_limit: int = Field(
        3,
        ge=1,
        description="Soft bounces and blocks in a row (no delivery between) after which a member "
        "is marked bounced.",
    )
    signup_emails_per_hour: int = Field(
        100,
        ge=0,
        description="Confirmation emails the sign-up form and the preference centre may send in "
        "an hour, in all, whoever asks; past it, none go out and the log says so. 0: none at all.",
    )
    captcha_provider: CaptchaProvider | None = Field(
        None,
        description="A CAPTCHA on the sign-up form, for lists that are targeted: turnstile "
        "(Cloudflare), hcaptcha or friendly-captcha. Off by default; the hidden honeypot field "
        "stays either way.",
    )
    captcha_site_key: str | None = Field(
        None, description="The CAPTCHA's site key (public, put in the form)."
    )
    captcha_secret: SecretStr | None = Field(
        None, description="The CAPTCHA's secret key, for the server-side verify call."
    )
    captcha_verify_url: str | None = Field(
        None, description="The provider's verify endpoint, if not its usual one (for tests)."
    )
    allowed_hosts: str = Field(
        "",
        description="Other host names the web app answers to, comma-separated, besides "
        "MAILER_BASE_URL's and this machine's own (127.0.0.1, localhost): e.g. an old domain.",
    )
    notice_url: SecretStr | None = Field(
        None,
        description="A second way to reach the editors when the newsletter's transport fails: "
        "smtp(s)://user:pass@relay:587 (another relay) or https://... (a JSON POST, as chat and "
        "monitoring webhooks take); secret, since it may hold a password or a token.",
    )
    log_format: LogFormat = Field(
        LogFormat.text,
        description="text (one line per event) or json (one JSON object per line) for what "
        "serve, the scheduler and send log.",
    )
    log_level: LogLevel = Field(
        LogLevel.info, description="The least severe of mailer's log lines written: DEBUG to ERROR."
    )
    base_url: str = Field(
        "http://127.0.0.1:8000",
        description="Public URL of the web app, used in links in every email.",
    )
    secret_key: SecretStr | None = Field(
        None,
        description="Signs the tokens in links; required by serve and by every transport but outbox.",
    )

    @field_validator("base_url")
    @classmethod
    def _strip_slash(cls, value: str) -> str:
        return value.rstrip("/")

    @field_validator("bounce_address")
    @classmethod
    def _verp_fits(cls, value: str | None) -> str | None:
        if value is None:
            return None
        local = value.rpartition("@")[0]
        if not value.isascii() or "+" in local:
            raise ValueError(
                "must be a plain ASCII address without '+': mailer adds +<token> to it"
            )
        if len(local) > MAX_BOUNCE_LOCAL_PART:
            raise ValueError(
                f"the part before @ has {len(local)} characters; with the +<token> mailer adds "
                f"it must have at most {MAX_BOUNCE_LOCAL_PART} (SMTP allows 64), e.g. bounces@..."
            )
        return value


class Sender(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Annotated[str, HeaderLine] = Field(description="The name members see in their inbox.")
    email: EmailStr = Field(description="The From address.")
    reply_to: EmailStr | None = Field(
        None, description="Where replies go; the From address if unset."
    )


SegmentName = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9-]*$", max_length=40)]


class Segment(BaseModel):
    """A named group of members, defined by rules over their tags, region and attributes.

    A member belongs to the segment when every kind of rule given matches; within a
    kind, any listed value matches (tags = ["a", "b"] means tag a or tag b).
    """

    model_config = ConfigDict(extra="forbid")

    name: SegmentName
    label: str = Field(description="What members and editors see, e.g. 'Youth loneliness'.")
    description: str = ""
    tags: list[str] = Field(default_factory=list, description="Member has any of these tags.")
    regions: list[str] = Field(
        default_factory=list, description="Member is in any of these regions."
    )
    attributes: dict[str, str | list[str]] = Field(
        default_factory=dict,
        description="Member's attribute equals the value (or any of the values).",
    )

    @model_validator(mode="after")
    def _has_a_rule(self) -> Segment:
        if not (self.tags or self.regions or self.attributes):
            raise ValueError(f"segment '{self.name}' has no rule: give tags, regions or attributes")
        return self


class Weekday(StrEnum):
    monday = "monday"
    tuesday = "tuesday"
    wednesday = "wednesday"
    thursday = "thursday"
    friday = "friday"
    saturday = "saturday"
    sunday = "sunday"


# How far ahead of the anchor the slot time is checked against daylight-saving
# changes: long enough for a fortnightly slot to meet every weekday alignment.
_DST_CHECK_YEARS = 20


class Schedule(BaseModel):
    """When issues go out: every other ``weekday`` at ``time`` in ``timezone``.

    The ``anchor`` is the date of any one slot: it fixes which weeks are slot
    weeks. Slots themselves are computed by :mod:`mailer.scheduling.slots`.
    """

    model_config = ConfigDict(extra="forbid")

    weekday: Weekday = Field(
        description="The day of the week every slot falls on; the anchor's day."
    )
    time: dt.time = Field(description="Local time of day of every slot, e.g. '09:00'.")
    timezone: str = Field(description="IANA time zone of that time, e.g. 'Europe/London'.")
    anchor: dt.date = Field(
        description="The date of one slot, past or future: fixes which weeks are slot weeks."
    )
    lateness_hours: float = Field(
        6,
        ge=0,
        le=7 * 24,
        description="How late a slot missed while the scheduler was down may still be sent when "
        "it starts; later ones are reported to the editors, not sent.",
    )
    reminder_hours: float = Field(
        48,
        ge=0,
        lt=14 * 24,
        description="How long before a slot the editors are reminded while its issue is missing "
        "or still a draft; 0 turns reminders off.",
    )
    editors: list[EmailStr] = Field(
        min_length=1,
        description="Who gets reminders and notices (nothing ready, a missed slot, a failed send).",
    )

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"'{value}' is not a time zone name: use one from the IANA database, "
                "like Europe/London"
            ) from None
        return value

    @field_validator("time")
    @classmethod
    def _whole_seconds(cls, value: dt.time) -> dt.time:
        if value.tzinfo is not None:
            raise ValueError("give the time without an offset: the time zone is `timezone`")
        return value.replace(microsecond=0)

    @model_validator(mode="after")
    def _consistent(self) -> Schedule:
        named = Weekday(self.anchor.strftime("%A").lower())
        if named != self.weekday:
            raise ValueError(
                f"the anchor {self.anchor.isoformat()} is a {named.value.capitalize()}, but "
                f"weekday is {self.weekday.value}: make the anchor the date of one slot"
            )
        self._check_daylight_saving()
        return self

    def _check_daylight_saving(self) -> None:
        """Refuse a time that is skipped or repeated on some slot day (a clock-change night):
        the slot would silently move by a fortnight or be ambiguous."""
        zone = self.zone
        for k in range(_DST_CHECK_YEARS * 27):
            day = self.anchor + dt.timedelta(weeks=2 * k)
            wall = dt.datetime.combine(day, self.time)
            first = wall.replace(tzinfo=zone, fold=0)
            second = wall.replace(tzinfo=zone, fold=1)
            if first.utcoffset() != second.utcoffset():
                round_trip = first.astimezone(dt.UTC).astimezone(zone).replace(tzinfo=None)
                what = "does not exist" if round_trip != wall else "happens twice"
                raise ValueError(
                    f"{self.time:%H:%M} {what} on {day.isoformat()} in {self.timezone} (the "
                    "clocks change that night): pick a time outside the small hours"
                )

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def lateness(self) -> dt.timedelta:
        return dt.timedelta(hours=self.lateness_hours)

    @property
    def reminder(self) -> dt.timedelta:
        return dt.timedelta(hours=self.reminder_hours)


class Newsletter(BaseModel):
    """What editors decide, from mailer.toml."""

    model_config = ConfigDict(extra="forbid")

    name: Annotated[str, HeaderLine] = Field(
        description="The newsletter's name, shown in the header and the List-Id."
    )
    list_id: Annotated[str, HeaderLine] = Field(
        description="The List-Id domain part, e.g. 'news.loneliness-coalition.org.uk'."
    )
    language: str = Field("en-GB", description="The lang attribute of every email and page.")
    sender: Sender
    postal_address: str = Field(description="The sender's postal address, shown in every footer.")
    website: str | None = Field(
        None, description="The organisation's home page, linked from the header."
    )
    brand_colour: str = Field(
        "#1f5c4a", pattern=r"^#[0-9a-fA-F]{6}$", description="Header and button colour."
    )
    templates_dir: Path = Field(Path("templates"), description="Where the email templates live.")
    issues_dir: Path = Field(Path("issues"), description="Where issue files live.")
    segments: list[Segment] = Field(default_factory=list)
    schedule: Schedule | None = Field(
        None,
        description="The fortnightly slots `python scheduler.py` sends on; none: no scheduler.",
    )

    @field_validator("segments")
    @classmethod
    def _unique_segments(cls, segments: list[Segment]) -> list[Segment]:
        seen: set[str] = set()
        for segment in segments:
            if segment.name in seen:
                raise ValueError(f"segment '{segment.name}' is defined twice")
            seen.add(segment.name)
        return segments

    @property
    def segment_names(self) -> list[str]:
        return [segment.name for segment in self.segments]

    def segment(self, name: str) -> Segment:
        for segment in self.segments:
            if segment.name == name:
                return segment
        raise ConfigError(
            f"there is no segment named '{name}'; mailer.toml defines: {', '.join(self.segment_names)}"
        )


def load_newsletter(path: Path) -> Newsletter:
    """Read and validate mailer.toml; relative directories are resolved against its folder."""
    where = display_path(path)
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(
            f"{where}: no such file. Run mailer from the project folder, "
            "or set MAILER_CONFIG_PATH to your mailer.toml."
        ) from None
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"{where}: not valid TOML: {error}") from None
    # TOML tables read best as [segments.youth]; the model wants a list with names.
    if isinstance(raw.get("segments"), dict):
        raw["segments"] = [
            {"name": name, **body} if isinstance(body, dict) else body
            for name, body in raw["segments"].items()
        ]
    try:
        newsletter = Newsletter.model_validate(raw)
    except ValidationError as error:
        details = "; ".join(
            f"{'.'.join(str(part) for part in e['loc'])}: {e['msg']}" for e in error.errors()
        )
        raise ConfigError(f"{where}: {details}") from None
    base = path.parent
    return newsletter.model_copy(
        update={
            "templates_dir": base / newsletter.templates_dir,
            "issues_dir": base / newsletter.issues_dir,
        }
    )


# MAILER_* variables that are not settings of mailer itself, but of its tests and benchmarks.
NOT_SETTINGS = frozenset(
    {"MAILER_TEST_POSTGRES_URL", "MAILER_BENCH_PROCESSES", "MAILER_CRASH_SEED"}
)


def setting_names() -> set[str]:
    """Every environment variable a setting is read from."""
    names: set[str] = set()
    for name, info in Settings.model_fields.items():
        names.add(f"MAILER_{name.upper()}")
        alias = info.validation_alias
        if isinstance(alias, AliasChoices):
            names.update(str(choice) for choice in alias.choices)
    return names


def unknown_variables(variables: dict[str, str | None]) -> list[str]:
    """One message per MAILER_* variable that is no setting, naming the closest known one."""
    known = setting_names()
    problems = []
    for name in sorted(variables):
        if not name.startswith("MAILER_") or name in known or name in NOT_SETTINGS:
            continue
        close = difflib.get_close_matches(name, sorted(known), n=1, cutoff=0.6)
        hint = f" Did you mean {close[0]}?" if close else ""
        problems.append(f"{name} is not a mailer setting.{hint}")
    return problems


def _dotenv(path: Path) -> dict[str, str | None]:
    if not path.is_file():
        return {}
    from dotenv import dotenv_values

    return dict(dotenv_values(path))


def get_settings() -> Settings:
    """The settings from the environment and .env; ConfigError naming each problem, a
    MAILER_* variable that mailer does not know (a typo) included."""
    typos = unknown_variables({**_dotenv(Path(".env")), **os.environ})
    if typos:
        raise ConfigError(
            "unknown setting in the environment: "
            + " ".join(typos)
            + " Every setting is in docs/configuration.md; nothing was done."
        )
    try:
        return Settings()
    except ValidationError as error:
        details = "; ".join(
            f"MAILER_{str(e['loc'][0]).upper()}: {e['msg']}" for e in error.errors()
        )
        raise ConfigError(f"bad setting in the environment: {details}") from None
