"""The members API's bodies: pydantic models that check requests and describe answers.

The same models validate what comes in and make the OpenAPI document
(:mod:`mailer.web.api.openapi`), so the document cannot drift from the code.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from mailer.store import Subscriber, SubscriberStatus

__all__ = [
    "Consent",
    "IssueOut",
    "IssuesOut",
    "MemberCreate",
    "MemberOut",
    "MemberPage",
    "MemberUpdate",
    "Problem",
    "ProblemField",
    "SegmentOut",
    "SegmentsOut",
    "SendProgress",
]

Text200 = Annotated[str, Field(max_length=200)]


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class _Out(BaseModel):
    model_config = ConfigDict(frozen=True)


class Consent(_In):
    """Consent the caller already holds: where and when the person agreed."""

    source: Annotated[str, Field(min_length=1, max_length=200)] = Field(
        description="Where the person agreed, e.g. 'CRM: event registration form, Cardiff'."
    )
    at: AwareDatetime = Field(description="When they agreed, with its UTC offset.")


class MemberCreate(_In):
    """A new member. Either a double opt-in (the default) or consent the caller holds."""

    email: Annotated[str, Field(min_length=3, max_length=320)]
    name: Text200 | None = None
    organisation: Text200 | None = None
    region: Annotated[str, Field(max_length=100)] | None = Field(
        None, description="One of mailer.toml's regions (GET /api/v1/segments lists them)."
    )
    interests: list[Annotated[str, Field(max_length=40)]] | None = Field(
        None, max_length=50, description="Names of choosable segments."
    )
    double_opt_in: bool = Field(
        True,
        description="true: the member is pending and gets a confirmation email, as from the "
        "sign-up form. false: the member is active at once, and consent is required.",
    )
    consent: Consent | None = Field(
        None, description="Required when double_opt_in is false: the consent the caller holds."
    )


class MemberUpdate(_In):
    """Changes to a member's profile; fields left out are kept. Never changes the status."""

    name: Text200 | None = None
    organisation: Text200 | None = None
    region: Annotated[str, Field(max_length=100)] | None = None
    interests: list[Annotated[str, Field(max_length=40)]] | None = Field(None, max_length=50)


class MemberOut(_Out):
    id: int
    email: str
    name: str
    organisation: str
    region: str
    interests: list[str] = Field(description="The choosable segments the member chose.")
    segments: list[str] = Field(description="Every segment whose sections the member gets.")
    status: SubscriberStatus
    status_reason: str
    created_at: dt.datetime
    updated_at: dt.datetime

    @classmethod
    def of(cls, member: Subscriber, interests: list[str], segments: list[str]) -> MemberOut:
        return cls(
            id=member.id,
            email=member.email,
            name=member.name,
            organisation=member.organisation,
            region=member.region,
            interests=interests,
            segments=segments,
            status=member.status,
            status_reason=member.status_reason,
            created_at=member.created_at,
            updated_at=member.updated_at,
        )


class MemberPage(_Out):
    data: list[MemberOut]
    next_cursor: str | None = Field(
        description="Pass as ?cursor= for the next page; null on the last page."
    )


class SegmentOut(_Out):
    name: str
    label: str
    description: str
    choosable: bool
    active_members: int = Field(description="Active members who get the segment's sections.")


class SegmentsOut(_Out):
    data: list[SegmentOut]
    regions: list[str] = Field(description="The regions a member's region is chosen from.")


class IssueOut(_Out):
    slug: str
    date: dt.date | None
    subject: str | None
    status: Literal["draft", "ready", "invalid"]
    slot: dt.datetime | None = Field(
        description="The schedule slot that sends it (UTC), if its date is a slot's."
    )
    send_state: Literal["not sent", "sending", "stopped", "finished"]


class IssuesOut(_Out):
    data: list[IssueOut]


class SendProgress(_Out):
    issue: str
    status: Literal["sending", "stopped", "finished"]
    started_at: dt.datetime
    finished_at: dt.datetime | None
    deliveries: dict[str, int] = Field(description="Recipients by delivery state.")


class ProblemField(_Out):
    field: str
    message: str


class Problem(_Out):
    """An RFC 9457 problem detail."""

    type: str = "about:blank"
    title: str
    status: int
    detail: str
    errors: list[ProblemField] = Field(default_factory=list)
