"""Configuration: deployment settings from the environment, newsletter settings from mailer.toml.

Two models, one for each source:

* :class:`Settings` holds what differs between deployments and what is secret
  (database URL, transport, keys). It comes from ``MAILER_*`` environment
  variables and an optional ``.env`` file, never from the repository.
* :class:`Newsletter` holds what editors decide (name, sender, postal address,
  segments, schedule). It lives in ``mailer.toml`` at the project root, in git.
"""

from __future__ import annotations

import tomllib
from enum import StrEnum
from pathlib import Path
from typing import Annotated

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


class TransportName(StrEnum):
    outbox = "outbox"
    smtp = "smtp"
    sendgrid = "sendgrid"


class Settings(BaseSettings):
    """Deployment settings, each overridden by the environment variable named in its alias."""

    model_config = SettingsConfigDict(
        env_prefix="MAILER_", env_file=".env", extra="ignore", populate_by_name=True
    )

    config_path: Path = Field(
        Path("mailer.toml"), description="Path of the newsletter settings file (MAILER_CONFIG_PATH)."
    )
    database_url: str = Field(
        "sqlite:///subscribers/mailer.db",
        description="SQLAlchemy URL of the subscriber store; SQLite by default, PostgreSQL by URL.",
    )
    transport: TransportName = Field(
        TransportName.outbox, description="How mail leaves: outbox (files), smtp or sendgrid."
    )
    outbox_dir: Path = Field(Path("outbox"), description="Where the outbox transport writes .eml files.")
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
    send_rate: float = Field(
        0, ge=0, description="Messages per second a transport sends at most; 0 means no limit."
    )
    send_timeout: float = Field(
        30, gt=0, description="Seconds to wait for an SMTP server or SendGrid before giving up on a request."
    )
    sendgrid_api_key: SecretStr | None = Field(
        None,
        validation_alias=AliasChoices("SENDGRID_API_KEY", "MAILER_SENDGRID_API_KEY"),
        description="SendGrid API key (SENDGRID_API_KEY).",
    )
    sendgrid_api_url: str = Field(
        "https://api.sendgrid.com", description="SendGrid API base URL; tests point it at a local double."
    )
    sendgrid_webhook_public_key: str | None = Field(
        None, description="The Event Webhook verification key, base64 DER, as SendGrid shows it."
    )
    sendgrid_webhook_max_age: int = Field(
        86400, ge=0, description="Seconds a webhook signature timestamp may be old; 0 turns the check off."
    )
    soft_bounce_limit: int = Field(
        3,
        ge=1,
        description="Soft bounces and blocks in a row (no delivery between) after which a member "
        "is marked bounced.",
    )
    base_url: str = Field(
        "http://127.0.0.1:8000", description="Public URL of the web app, used in links in every email."
    )
    secret_key: SecretStr | None = Field(
        None, description="Signs the tokens in links; required by serve and by every transport but outbox."
    )

    @field_validator("base_url")
    @classmethod
    def _strip_slash(cls, value: str) -> str:
        return value.rstrip("/")


class Sender(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(description="The name members see in their inbox.")
    email: EmailStr = Field(description="The From address.")
    reply_to: EmailStr | None = Field(None, description="Where replies go; the From address if unset.")


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
    regions: list[str] = Field(default_factory=list, description="Member is in any of these regions.")
    attributes: dict[str, str | list[str]] = Field(
        default_factory=dict, description="Member's attribute equals the value (or any of the values)."
    )

    @model_validator(mode="after")
    def _has_a_rule(self) -> Segment:
        if not (self.tags or self.regions or self.attributes):
            raise ValueError(f"segment '{self.name}' has no rule: give tags, regions or attributes")
        return self


class Newsletter(BaseModel):
    """What editors decide, from mailer.toml."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(description="The newsletter's name, shown in the header and the List-Id.")
    list_id: str = Field(description="The List-Id domain part, e.g. 'news.loneliness-coalition.org.uk'.")
    language: str = Field("en-GB", description="The lang attribute of every email and page.")
    sender: Sender
    postal_address: str = Field(description="The sender's postal address, shown in every footer.")
    website: str | None = Field(None, description="The organisation's home page, linked from the header.")
    brand_colour: str = Field("#1f5c4a", pattern=r"^#[0-9a-fA-F]{6}$", description="Header and button colour.")
    templates_dir: Path = Field(Path("templates"), description="Where the email templates live.")
    issues_dir: Path = Field(Path("issues"), description="Where issue files live.")
    segments: list[Segment] = Field(default_factory=list)

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


def get_settings() -> Settings:
    try:
        return Settings()
    except ValidationError as error:
        details = "; ".join(
            f"MAILER_{str(e['loc'][0]).upper()}: {e['msg']}" for e in error.errors()
        )
        raise ConfigError(f"bad setting in the environment: {details}") from None
