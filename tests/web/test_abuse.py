"""Nobody can make the newsletter mail anyone else: the sign-up form as an attacker sees it.

Limits per mailbox (plus-tags and Gmail's dots are one person's), per client (an
IPv4 address, an IPv6 /64) and on confirmation emails in all; a confirmation email
that holds nothing the requester typed; no email to an address that complained,
bounced or was forgotten; a CAPTCHA for lists that are targeted; an answer that
takes as long whatever the address; and a Host header that cannot be chosen.
"""

from __future__ import annotations

import logging
import re
import statistics
import time
from collections.abc import Callable, Iterator
from email.message import EmailMessage

import pytest
from doubles.captcha import CaptchaDouble
from helpers.outbox import read_eml
from helpers.web import Web, sign_up
from pydantic import SecretStr

from mailer.store import MemberRecord, SubscriberStatus
from mailer.store.emails import mailbox_key
from mailer.tokens import Purpose
from mailer.web.context import SignupLimits
from mailer.web.signup import client_key

TOKEN = re.compile(r'name="form_token" value="([^"]+)"')
ATTACK_NAME = "Your account is suspended: verify now at https://evil.example/login"


def _without_tokens(page: str) -> str:
    return re.sub(r'value="[^"]*"', "", page)


def confirmations(web: Web) -> dict[str, EmailMessage]:
    folder = web.outbox / "confirmations"
    return {path.stem: read_eml(path) for path in folder.glob("*.eml")} if folder.exists() else {}


def behind_proxy() -> dict[str, object]:
    """What `mailer serve` does: client addresses from X-Forwarded-For, from our own proxy."""
    return {"server_options": {"proxy_headers": True, "forwarded_allow_ips": "127.0.0.1"}}


class TestOneMailboxOnePerson:
    @pytest.mark.parametrize(
        ("address", "key"),
        [
            ("Victim@Example.org", "victim@example.org"),
            ("victim+1@example.org", "victim@example.org"),
            ("victim+a+b@example.org", "victim@example.org"),
            ("v.i.c.t.i.m@gmail.com", "victim@gmail.com"),
            ("V.ictim+news@googlemail.com", "victim@gmail.com"),
            ("v.ictim@example.org", "v.ictim@example.org"),  # dots matter elsewhere
            ("+tagonly@example.org", "+tagonly@example.org"),
        ],
    )
    def test_the_mailbox_a_person_owns(self, address: str, key: str) -> None:
        assert key == mailbox_key(address)

    def test_plus_tags_share_one_quota(self, make_web: Callable[..., Web]) -> None:
        """victim+1@, victim+2@... all reach victim@: together they get the per-address quota."""
        web = make_web(limits=SignupLimits(per_address=3, per_client=100))
        for n in range(10):
            assert 200 == sign_up(web, f"victim+{n}@example.org").status_code
        assert 3 == len(confirmations(web))


class TestOneClient:
    @pytest.mark.parametrize(
        ("host", "key"),
        [
            ("203.0.113.7", "203.0.113.7"),
            ("2001:db8:1:2:3:4:5:6", "2001:db8:1:2::/64"),
            ("2001:db8:1:2:ffff::1", "2001:db8:1:2::/64"),
            ("::ffff:203.0.113.7", "203.0.113.7"),
            ("unknown", "unknown"),
        ],
    )
    def test_a_client_is_an_ipv4_address_or_an_ipv6_64(self, host: str, key: str) -> None:
        assert key == client_key(host)

    def test_fifty_addresses_of_one_64_are_one_client(self, make_web: Callable[..., Web]) -> None:
        """The attack in the report: 50 IPv6 addresses of one /64, one sign-up each."""
        web = make_web(limits=SignupLimits(per_address=100, per_client=5), **behind_proxy())
        statuses = [
            sign_up(web, f"victim+{n}@example.org", client=f"2001:db8:0:1::{n:x}").status_code
            for n in range(1, 51)
        ]
        assert [200] * 5 + [429] * 45 == statuses
        assert 200 == sign_up(web, "other@example.org", client="2001:db8:0:2::1").status_code


class TestHourlyCap:
    def test_past_the_cap_no_email_goes_out_and_the_operator_is_told_once(
        self, make_web: Callable[..., Web], caplog: pytest.LogCaptureFixture
    ) -> None:
        web = make_web(signup_emails_per_hour=3, **behind_proxy())
        with caplog.at_level(logging.INFO, logger="mailer"):
            statuses = [
                sign_up(web, f"n{n}@example.org", client=f"198.51.100.{n}").status_code
                for n in range(6)
            ]
        assert [200] * 6 == statuses  # whoever asks sees the same page
        assert 3 == len(confirmations(web))
        warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
        assert 1 == len(warnings)
        assert "MAILER_SIGNUP_EMAILS_PER_HOUR" in warnings[0].getMessage()

    def test_zero_turns_sign_up_emails_off(self, make_web: Callable[..., Web]) -> None:
        web = make_web(signup_emails_per_hour=0)
        sign_up(web, "new@example.org")
        assert {} == confirmations(web)


class TestTheConfirmationEmail:
    def test_it_holds_nothing_the_requester_typed(self, sqlite_web: Web) -> None:
        """The report's attack: a 'name' that reads as a phishing line. It is not in the email."""
        sign_up(sqlite_web, "target.person@example.org", ATTACK_NAME)
        message = confirmations(sqlite_web)["target.person@example.org"]
        assert "target.person@example.org" == str(message["To"])  # no display name
        body = message.as_string()
        assert "evil.example" not in body and "suspended" not in body
        text = message.get_body(("plain",))
        assert text is not None
        content = str(text.get_content())
        assert "Hello," == content.splitlines()[0]
        assert "target.person" not in content  # not even the address: nothing typed comes back
        # The name is kept with the sign-up, for when it is confirmed.
        member = sqlite_web.store.find("target.person@example.org")
        assert member is not None and ATTACK_NAME == member.name

    @pytest.mark.parametrize("status", [SubscriberStatus.complained, SubscriberStatus.bounced])
    def test_no_email_to_an_address_that_complained_or_bounced(
        self, web: Web, status: SubscriberStatus
    ) -> None:
        [member] = web.add("left@example.org")
        web.store.set_status(member.id, status, reason="test", source="test")
        history = web.store.history(member.id)
        new_page = sign_up(web, "new@example.org")
        page = sign_up(web, "left@example.org")
        assert _without_tokens(new_page.text) == _without_tokens(page.text)  # the same page
        assert "left@example.org" not in confirmations(web)
        assert "new@example.org" in confirmations(web)
        assert status == web.store.get(member.id).status
        assert history == web.store.history(member.id)

    def test_no_email_to_a_forgotten_address(self, sqlite_web: Web) -> None:
        sqlite_web.add("gone@example.org")
        sqlite_web.store.forget("gone@example.org", reason="test", source="test")
        assert 200 == sign_up(sqlite_web, "gone@example.org").status_code
        assert {} == confirmations(sqlite_web)


class TestUnconfirmedSignUpsAreDeleted:
    def test_the_web_app_deletes_them_when_it_starts_and_every_hour(
        self, make_web: Callable[..., Web], tmp_path: object
    ) -> None:
        import datetime as dt

        first = make_web()
        long_ago = dt.datetime.now(dt.UTC) - dt.timedelta(days=8)
        first.store.add(
            [
                MemberRecord(
                    "old@example.org",
                    name="Old Pending",
                    status=SubscriberStatus.pending,
                    status_changed_at=long_ago,
                ),
                MemberRecord("young@example.org", status=SubscriberStatus.pending),
                MemberRecord("active@example.org", status_changed_at=long_ago),
            ],
            source="test",
        )
        make_web(first.settings.database_url)  # a second app on the same list starts up
        deadline = time.monotonic() + 10
        while first.store.find("old@example.org") is not None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert None is first.store.find("old@example.org")
        assert first.store.find("young@example.org") is not None
        assert first.store.find("active@example.org") is not None


class TestCaptcha:
    @pytest.fixture
    def captcha(self) -> Iterator[CaptchaDouble]:
        with CaptchaDouble(solved={"solved-token"}) as double:
            yield double

    @pytest.mark.parametrize(
        ("provider", "field", "widget"),
        [
            ("turnstile", "cf-turnstile-response", "cf-turnstile"),
            ("hcaptcha", "h-captcha-response", "h-captcha"),
            ("friendly-captcha", "frc-captcha-solution", "frc-captcha"),
        ],
    )
    def test_a_sign_up_goes_on_only_when_the_provider_says_so(
        self,
        make_web: Callable[..., Web],
        captcha: CaptchaDouble,
        provider: str,
        field: str,
        widget: str,
    ) -> None:
        web = make_web(
            captcha_provider=provider,
            captcha_site_key="site-key-123",
            captcha_secret=SecretStr(captcha.secret),
            captcha_verify_url=captcha.url,
        )
        form = web.client.get("/subscribe")
        assert f'class="{widget}" data-sitekey="site-key-123"' in form.text
        assert "script-src" in form.headers["content-security-policy"]
        refused = sign_up(web, "bot@example.org", **{field: "made-up"})
        assert 400 == refused.status_code
        assert "complete the check" in refused.text
        assert None is web.store.find("bot@example.org")
        accepted = sign_up(web, "person@example.org", **{field: "solved-token"})
        assert 200 == accepted.status_code
        assert "person@example.org" in confirmations(web)
        assert captcha.secret == captcha.requests[-1]["secret"]

    def test_a_provider_that_does_not_answer_lets_nothing_through(
        self, make_web: Callable[..., Web]
    ) -> None:
        web = make_web(
            captcha_provider="turnstile",
            captcha_site_key="k",
            captcha_secret=SecretStr("s"),
            captcha_verify_url="http://127.0.0.1:9/siteverify",  # nothing listens there
        )
        response = sign_up(web, "person@example.org", **{"cf-turnstile-response": "x"})
        assert 400 == response.status_code
        assert None is web.store.find("person@example.org")

    def test_off_by_default_and_the_honeypot_stays(self, sqlite_web: Web) -> None:
        form = sqlite_web.client.get("/subscribe")
        assert "data-sitekey" not in form.text and 'name="website"' in form.text
        assert "script-src" not in form.headers["content-security-policy"]


class TestTheAnswerTellsNothing:
    def test_the_time_to_answer_does_not_depend_on_the_address(
        self, make_web: Callable[..., Web]
    ) -> None:
        """New, active, forgotten, complained and honeypot sign-ups: the timings overlap."""
        web = make_web(limits=SignupLimits(per_address=1000, per_client=1000))
        web.add("active@example.org")
        [complained] = web.add("complained@example.org")
        web.store.set_status(complained.id, SubscriberStatus.complained, reason="t", source="t")
        web.add("forgotten@example.org")
        web.store.forget("forgotten@example.org", reason="test", source="test")
        token = TOKEN.search(web.client.get("/subscribe").text)
        assert token
        kinds = {
            "new": lambda n: {"email": f"new{n}@example.org"},
            "active": lambda n: {"email": "active@example.org"},
            "forgotten": lambda n: {"email": "forgotten@example.org"},
            "complained": lambda n: {"email": "complained@example.org"},
            "honeypot": lambda n: {"email": f"bot{n}@example.org", "website": "x"},
        }
        times: dict[str, list[float]] = {kind: [] for kind in kinds}
        for n in range(25):
            for kind, fields in kinds.items():
                data = {"form_token": token[1], "name": "", "website": "", **fields(n)}
                started = time.perf_counter()
                response = web.client.post("/subscribe", data=data)
                times[kind].append(time.perf_counter() - started)
                assert 200 == response.status_code
                web.settle()
        spans = {kind: _middle(values) for kind, values in times.items()}
        low = max(span[0] for span in spans.values())
        high = min(span[1] for span in spans.values())
        assert low <= high, f"the middle halves do not overlap: {spans}"


def _middle(values: list[float]) -> tuple[float, float]:
    quartiles = statistics.quantiles(values, n=4)
    return quartiles[0], quartiles[2]


class TestHostHeader:
    def test_a_host_that_is_not_ours_is_refused(self, sqlite_web: Web) -> None:
        """No redirect or page is ever built on a Host an attacker chose."""
        response = sqlite_web.client.get("/archive", headers={"Host": "evil.example"})
        assert 400 == response.status_code
        assert "evil.example" not in response.headers.get("location", "")

    def test_our_own_hosts_are_served(self, make_web: Callable[..., Web]) -> None:
        web = make_web(allowed_hosts="old-news.example.org, news.example.org")
        for host in ("127.0.0.1", "localhost", "old-news.example.org", "NEWS.example.org"):
            assert 200 == web.client.get("/static/site.css", headers={"Host": host}).status_code
        assert (
            400 == web.client.get("/static/site.css", headers={"Host": "evil.example"}).status_code
        )

    def test_https_sites_get_hsts(self, make_web: Callable[..., Web]) -> None:
        web = make_web(base_url="https://news.example.org")
        response = web.client.get("/static/site.css")
        assert "max-age=31536000" == response.headers["strict-transport-security"]

    def test_http_sites_do_not(self, sqlite_web: Web) -> None:
        assert "strict-transport-security" not in sqlite_web.client.get("/static/site.css").headers


class TestOddInput:
    def test_a_nul_in_the_name_is_refused_on_both_databases(self, web: Web) -> None:
        response = sign_up(web, "nul@example.org", "Ann\x00Lee")
        assert 400 == response.status_code
        assert "plain text" in response.text
        assert None is web.store.find("nul@example.org")

    def test_a_nul_in_the_address_is_an_invalid_address(self, web: Web) -> None:
        response = sign_up(web, "nul\x00@example.org")
        assert 400 == response.status_code
        assert "like name@example.org" in response.text

    @pytest.mark.parametrize("subscriber_id", [2**31, 2**63 - 1, 2**64 + 5])
    @pytest.mark.parametrize("purpose", list(Purpose))
    def test_a_signed_link_to_an_id_no_member_can_have_is_404(
        self, web: Web, subscriber_id: int, purpose: Purpose
    ) -> None:
        """Making one needs the key; it must still be a 404, not a 500 or 503."""
        import hashlib

        from helpers.web import SECRET
        from itsdangerous import URLSafeSerializer

        token = URLSafeSerializer(
            SECRET, salt=f"mailer.{purpose}", signer_kwargs={"digest_method": hashlib.sha256}
        ).dumps(subscriber_id)
        for method in ("GET", "POST"):
            response = web.client.request(method, f"/{purpose.value}/{token}")
            assert 404 == response.status_code
