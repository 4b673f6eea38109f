"""Members' links: unsubscribe (page and RFC 8058 one-click), the preference centre, and the
rule every token route keeps (confirmation links too): GET and HEAD change nothing."""

from __future__ import annotations

import re
from collections.abc import Callable
from urllib.parse import urlencode

import httpx
import pytest
from helpers.outbox import read_eml
from helpers.web import OLD_SECRET, SECRET, Web, snapshot
from pydantic import SecretStr

from mailer.store import SubscriberStatus
from mailer.store.preferences import opted_out
from mailer.tokens import Purpose, TokenSigner

ONE_CLICK = "List-Unsubscribe=One-Click"


def form_token(page: httpx.Response) -> str:
    found = re.search(r'name="form_token" value="([^"]+)"', page.text)
    assert found, page.text
    return found[1]


class TestUnsubscribePage:
    def test_get_shows_a_confirmation_and_changes_nothing(self, web: Web) -> None:
        """Mail scanners open every link: GET must not unsubscribe."""
        [m] = web.add("a@example.org")
        before = snapshot(web.store)
        page = web.client.get(web.link(m.id, Purpose.unsubscribe))
        assert 200 == page.status_code
        assert "Unsubscribe from Connected Communities?" in page.text
        assert "a***@example.org" in page.text  # masked: enough to recognise, not to read off
        assert "a@example.org" not in page.text
        assert before == snapshot(web.store)

    def test_the_page_hands_out_no_other_link_of_the_members(self, sqlite_web: Web) -> None:
        """Mailbox providers see the unsubscribe URL: it must not lead to the preference centre."""
        [m] = sqlite_web.add("a@example.org")
        url = sqlite_web.link(m.id, Purpose.unsubscribe)
        pages = [
            sqlite_web.client.get(url),
            sqlite_web.client.post(url, content=ONE_CLICK),  # what a provider's one-click sees
        ]
        for page in pages:
            assert 200 == page.status_code
            assert "/preferences/" not in page.text
            assert 'href="https://connected-communities.example.org"' in page.text
        assert "Sign up again" in pages[1].text

    def test_posting_the_form_unsubscribes(self, web: Web) -> None:
        [m] = web.add("a@example.org")
        url = web.link(m.id, Purpose.unsubscribe)
        done = web.client.post(url, data={"form_token": form_token(web.client.get(url))})
        assert 200 == done.status_code
        assert "You are unsubscribed" in done.text
        assert "unsubscribed" == web.store.get(m.id).status
        assert "web" == web.store.history(m.id)[-1].source

    def test_a_post_without_the_form_token_changes_nothing(self, web: Web) -> None:
        """A cross-site form cannot unsubscribe anyone: it has no form token."""
        [m] = web.add("a@example.org")
        response = web.client.post(web.link(m.id, Purpose.unsubscribe), data={"confirm": "yes"})
        assert 400 == response.status_code
        assert "Press Unsubscribe again" in response.text
        assert "active" == web.store.get(m.id).status

    def test_a_form_token_for_another_member_does_not_work(self, sqlite_web: Web) -> None:
        a, b = sqlite_web.add("a@example.org", "b@example.org")
        token = form_token(sqlite_web.client.get(sqlite_web.link(a.id, Purpose.unsubscribe)))
        response = sqlite_web.client.post(
            sqlite_web.link(b.id, Purpose.unsubscribe), data={"form_token": token}
        )
        assert (400, "active") == (response.status_code, sqlite_web.store.get(b.id).status)

    def test_unsubscribing_twice_is_fine(self, sqlite_web: Web) -> None:
        [m] = sqlite_web.add("a@example.org")
        url = sqlite_web.link(m.id, Purpose.unsubscribe)
        for _ in range(2):
            response = sqlite_web.client.post(
                url,
                content=ONE_CLICK,
                headers={"Content-Type": "application/x-www-form-urlencoded"},
            )
            assert 200 == response.status_code
        assert 2 == len(sqlite_web.store.history(m.id))  # added, unsubscribed once

    def test_an_already_unsubscribed_member_is_told_so(self, sqlite_web: Web) -> None:
        [m] = sqlite_web.add("a@example.org")
        sqlite_web.store.set_status(m.id, SubscriberStatus.bounced, reason="test", source="test")
        page = sqlite_web.client.get(sqlite_web.link(m.id, Purpose.unsubscribe))
        assert "emails to this address bounced" in page.text

    def test_a_member_no_longer_on_the_list(self, sqlite_web: Web) -> None:
        [m] = sqlite_web.add("a@example.org")
        sqlite_web.store.forget(m.email, reason="asked", source="test")
        page = sqlite_web.client.get(sqlite_web.link(m.id, Purpose.unsubscribe))
        assert (200, True) == (page.status_code, "not on our list" in page.text)


class TestOneClick:
    @pytest.mark.parametrize("encoding", ["urlencoded", "multipart"])
    def test_one_click_unsubscribes_with_200_and_no_redirect(self, web: Web, encoding: str) -> None:
        """RFC 8058: a POST with List-Unsubscribe=One-Click, no cookies, no form token."""
        [m] = web.add("a@example.org")
        url = web.link(m.id, Purpose.unsubscribe)
        if encoding == "urlencoded":
            response = web.client.post(
                url,
                content=ONE_CLICK,
                headers={"Content-Type": "application/x-www-form-urlencoded"},
            )
        else:
            response = web.client.post(url, files={"List-Unsubscribe": (None, "One-Click")})
        assert 200 == response.status_code
        assert "set-cookie" not in response.headers
        assert "unsubscribed" == web.store.get(m.id).status
        assert "one-click unsubscribe" == web.store.get(m.id).status_reason


def _read_only_link(web: Web, route: str) -> str:
    """A working link for the route: a member's own, or a pending sign-up's confirmation."""
    if route == "confirm":
        [m] = web.add("p@example.org", status=SubscriberStatus.pending)
        return web.confirm_link(m)
    [m] = web.add("a@example.org")
    return web.link(m.id, Purpose(route))


class TestReadOnlyMethods:
    """The rule every token route follows: GET and HEAD show a page and change nothing."""

    @pytest.mark.parametrize("method", ["GET", "HEAD"])
    @pytest.mark.parametrize("route", ["unsubscribe", "preferences", "confirm"])
    def test_get_and_head_never_change_anything(self, web: Web, route: str, method: str) -> None:
        """Mail scanners open every link in an email (some with HEAD). Even carrying the
        page's own form token and the one-click field, in the body and the query, they
        change nothing."""
        link = _read_only_link(web, route)
        fields = {
            "form_token": form_token(web.client.get(link)),
            "action": "unsubscribe",
            "List-Unsubscribe": "One-Click",
        }
        before = snapshot(web.store)
        response = web.client.request(
            method,
            link,
            params=fields,
            content=urlencode(fields),
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        assert 200 == response.status_code
        assert "no-store" == response.headers["cache-control"]
        assert before == snapshot(web.store)


class TestTokens:
    @pytest.mark.parametrize(
        "token",
        ["nonsense", "MQ.forged-signature-000000000000000000000", "MQ", "..", "%00", "a" * 3000],
    )
    def test_a_token_that_is_not_ours_is_404_and_changes_nothing(
        self, sqlite_web: Web, token: str
    ) -> None:
        sqlite_web.add("a@example.org")
        before = snapshot(sqlite_web.store)
        for method in ("GET", "HEAD", "POST"):
            for route in ("unsubscribe", "preferences", "confirm"):
                response = sqlite_web.client.request(
                    method,
                    f"/{route}/{token}",
                    content=ONE_CLICK,
                    headers={"Content-Type": "application/x-www-form-urlencoded"},
                )
                if response.url.path == "/":  # "/unsubscribe/.." is "/" once the dots go
                    assert response.status_code in (200, 405), (method, route)  # the home page
                    continue
                assert 404 == response.status_code, (method, route)
        assert before == snapshot(sqlite_web.store)

    def test_a_token_for_another_purpose_does_not_work(self, sqlite_web: Web) -> None:
        """A preferences token cannot unsubscribe; an unsubscribe token cannot open preferences."""
        [m] = sqlite_web.add("a@example.org")
        preferences_token = sqlite_web.tokens.token(m.id, Purpose.preferences)
        unsubscribe_token = sqlite_web.tokens.token(m.id, Purpose.unsubscribe)
        assert (
            404
            == sqlite_web.client.post(
                f"/unsubscribe/{preferences_token}", content=ONE_CLICK
            ).status_code
        )
        assert 404 == sqlite_web.client.get(f"/preferences/{unsubscribe_token}").status_code
        assert "active" == sqlite_web.store.get(m.id).status

    def test_member_links_and_confirmation_links_do_not_mix(self, sqlite_web: Web) -> None:
        """A member's own link does not confirm a sign-up; a confirmation link does not unsubscribe."""
        [m] = sqlite_web.add("p@example.org", status=SubscriberStatus.pending)
        confirm_token = sqlite_web.confirm_link(m).removeprefix("/confirm/")
        for purpose in Purpose:
            token = sqlite_web.tokens.token(m.id, purpose)
            assert 404 == sqlite_web.client.post(f"/confirm/{token}").status_code
        for route in ("unsubscribe", "preferences"):
            response = sqlite_web.client.post(f"/{route}/{confirm_token}", content=ONE_CLICK)
            assert 404 == response.status_code
        assert "pending" == sqlite_web.store.get(m.id).status

    def test_a_token_carries_no_email_address(self, sqlite_web: Web) -> None:
        [m] = sqlite_web.add("readable@example.org")
        assert "readable" not in sqlite_web.link(m.id, Purpose.unsubscribe)

    def test_links_signed_with_an_old_key_keep_working(self, make_web: Callable[..., Web]) -> None:
        """Key rotation: MAILER_SECRET_KEY=new,old accepts links made with either."""
        web = make_web(secret_key=SecretStr(f"{SECRET},{OLD_SECRET}"))
        [m] = web.add("a@example.org")
        old = TokenSigner([OLD_SECRET]).token(m.id, Purpose.unsubscribe)
        assert 200 == web.client.post(f"/unsubscribe/{old}", content=ONE_CLICK).status_code
        assert "unsubscribed" == web.store.get(m.id).status

    def test_links_signed_with_a_retired_key_stop_working(
        self, make_web: Callable[..., Web]
    ) -> None:
        web = make_web(secret_key=SecretStr(SECRET))
        [m] = web.add("a@example.org")
        old = TokenSigner([OLD_SECRET]).token(m.id, Purpose.unsubscribe)
        assert 404 == web.client.get(f"/unsubscribe/{old}").status_code


class TestPreferences:
    def _member(self, web: Web) -> tuple[int, str]:
        # youth (by tag) and wales (by region) in mailer.toml
        [m] = web.add("a@example.org", tags=("youth-loneliness",), region="Wales")
        return m.id, web.link(m.id, Purpose.preferences)

    def test_the_page_offers_every_interest_and_says_what_the_member_gets(
        self, sqlite_web: Web
    ) -> None:
        """Every choosable segment is offered, not only the member's; the region is chosen."""
        _, url = self._member(sqlite_web)
        page = sqlite_web.client.get(url)
        assert 200 == page.status_code
        for label in ("Youth loneliness", "Intergenerational connection", "Returning to in-person"):
            assert label in page.text
        assert 'value="youth" id="interest-youth" checked' in page.text
        assert 'value="intergenerational" id="interest-intergenerational">' in page.text
        assert '<option value="Wales" selected>' in page.text
        assert 'id="segment-wales" checked' in page.text  # the region's segment, to opt out of
        assert "segment-scotland" not in page.text
        assert "and those for Youth loneliness and Wales." in page.text

    def test_unticking_a_segment_opts_out_of_it_and_is_logged(self, web: Web) -> None:
        member_id, url = self._member(web)
        token = form_token(web.client.get(url))
        saved = web.client.post(
            url, data={"form_token": token, "action": "save", "interest": ["youth"]}
        )
        assert 200 == saved.status_code
        assert "Your choices are saved" in saved.text
        assert {member_id: frozenset({"wales"})} == opted_out(web.store.engine, [member_id])
        assert "opted out of wales" in web.store.history(member_id)[-1].detail
        again = web.client.post(
            url, data={"form_token": token, "action": "save", "segment": ["wales"]}
        )
        assert 200 == again.status_code
        assert {} == opted_out(web.store.engine, [member_id])

    def test_choosing_interests_region_and_organisation(self, web: Web) -> None:
        """Interests become tags, the region one of the configured ones; all logged, one save."""
        member_id, url = self._member(web)
        token = form_token(web.client.get(url))
        saved = web.client.post(
            url,
            data={
                "form_token": token,
                "action": "save",
                "name": "Gwen Jones",
                "organisation": "Youth Cymru",
                "region": "scotland",
                "interests_shown": "1",
                "interest": ["intergenerational", "in-person"],
            },
        )
        assert 200 == saved.status_code, saved.text
        member = web.store.get(member_id)
        assert ("Gwen Jones", "Youth Cymru", "Scotland") == (
            member.name,
            member.organisation,
            member.region,
        )
        assert ("intergenerational", "in-person") == member.tags
        assert "and those for Intergenerational connection, Returning" in saved.text
        assert "changed name, organisation, region, tags" == web.store.history(member_id)[-1].detail

    @pytest.mark.parametrize(
        ("field", "value"),
        [
            ("organisation", "=?utf-8?q?Bcc=3A_x?="),
            ("name", "Gwen =?utf-8?b?QmNjOiB4?="),
            ("region", "Atlantis"),
            ("interest", "wales"),  # a region's segment is not an interest
        ],
    )
    def test_a_bad_choice_is_refused_and_changes_nothing(
        self, sqlite_web: Web, field: str, value: str
    ) -> None:
        member_id, url = self._member(sqlite_web)
        before = snapshot(sqlite_web.store)
        data = {"form_token": form_token(sqlite_web.client.get(url)), "action": "save"}
        data |= {field: value, "interests_shown": "1"}
        response = sqlite_web.client.post(url, data=data)
        assert 400 == response.status_code
        assert "Nothing was changed" in response.text
        assert before == snapshot(sqlite_web.store)
        assert "Wales" == sqlite_web.store.get(member_id).region

    def test_a_profile_change_never_reactivates(self, sqlite_web: Web) -> None:
        """Only active members get the form; a forged save for another status does nothing."""
        member_id, url = self._member(sqlite_web)
        token = form_token(sqlite_web.client.get(url))
        sqlite_web.store.unsubscribe(member_id, reason="test", source="test")
        response = sqlite_web.client.post(
            url, data={"form_token": token, "action": "save", "organisation": "X"}
        )
        assert 400 == response.status_code
        member = sqlite_web.store.get(member_id)
        assert ("unsubscribed", "") == (member.status, member.organisation)

    def test_changing_the_address_needs_the_new_address_s_confirmation(self, web: Web) -> None:
        member_id, url = self._member(web)
        asked = web.client.post(
            url,
            data={
                "form_token": form_token(web.client.get(url)),
                "action": "change_address",
                "new_email": "Gwen@New.example.org",
            },
        )
        assert 200 == asked.status_code
        assert "We have emailed a link to G***@new.example.org" in asked.text, re.findall(
            r'class="notice[^"]*"[^>]*>([^<]*)', asked.text
        )
        assert "a@example.org" == web.store.get(member_id).email  # not until confirmed
        sent = read_eml(web.outbox / "confirmations" / "gwen@new.example.org.eml")
        text = sent.get_body(("plain",))
        assert text is not None
        link = re.search(r"/change-address/[A-Za-z0-9_=-]+", str(text.get_content()))
        assert link and "new.example.org" not in link[0]  # the address is not readable in it
        page = web.client.get(link[0])
        assert 200 == page.status_code and "a@example.org" == web.store.get(member_id).email
        done = web.client.post(link[0], data={"form_token": form_token(page)})
        assert 200 == done.status_code and "Your address is changed" in done.text
        assert "Gwen@new.example.org" == web.store.get(member_id).email
        note = read_eml(web.outbox / "confirmations" / "a@example.org.eml")
        assert "was changed" in str(note["Subject"])
        assert "changed email" == web.store.history(member_id)[-1].detail
        again = web.client.post(link[0], data={"form_token": form_token(page)})
        assert "Gwen@new.example.org" == web.store.get(member_id).email and again.status_code < 500

    def test_an_address_taken_by_another_member_is_not_used(self, sqlite_web: Web) -> None:
        member_id, url = self._member(sqlite_web)
        sqlite_web.add("taken@example.org")
        sqlite_web.client.post(
            url,
            data={
                "form_token": form_token(sqlite_web.client.get(url)),
                "action": "change_address",
                "new_email": "taken@example.org",
            },
        )
        eml = read_eml(sqlite_web.outbox / "confirmations" / "taken@example.org.eml")
        text = eml.get_body(("plain",))
        assert text is not None
        link = re.search(r"/change-address/[A-Za-z0-9_=-]+", str(text.get_content()))
        assert link
        page = sqlite_web.client.get(link[0])
        refused = sqlite_web.client.post(link[0], data={"form_token": form_token(page)})
        assert 409 == refused.status_code
        assert "a@example.org" == sqlite_web.store.get(member_id).email

    def test_unsubscribing_from_the_preference_centre(self, web: Web) -> None:
        member_id, url = self._member(web)
        response = web.client.post(
            url, data={"form_token": form_token(web.client.get(url)), "action": "unsubscribe"}
        )
        assert (200, "unsubscribed") == (response.status_code, web.store.get(member_id).status)
        assert "Subscribe me again" in response.text

    def test_re_subscribing_goes_through_a_confirmation_email(self, web: Web) -> None:
        """A link in an old email is not enough to start mailing an address again."""
        member_id, url = self._member(web)
        web.store.unsubscribe(member_id, reason="test", source="test")
        page = web.client.get(url)
        assert "Subscribe me again" in page.text
        response = web.client.post(
            url, data={"form_token": form_token(page), "action": "resubscribe"}
        )
        assert 200 == response.status_code
        assert "We have emailed a link to " in response.text
        assert "unsubscribed" == web.store.get(member_id).status  # not until it is confirmed
        sent = read_eml(web.outbox / "confirmations" / "a@example.org.eml")
        text = sent.get_body(("plain",))
        assert text is not None
        link = re.search(r"/confirm/[A-Za-z0-9_.-]+", str(text.get_content()))
        assert link
        confirm_page = web.client.get(link[0])
        web.client.post(link[0], data={"form_token": form_token(confirm_page)})
        assert "active" == web.store.get(member_id).status
        last = web.store.history(member_id)[-1]
        assert ("resubscribed", "web sign-up") == (last.kind, last.source)

    @pytest.mark.parametrize("status", [SubscriberStatus.complained])
    def test_after_a_complaint_no_link_brings_the_address_back(
        self, sqlite_web: Web, status: SubscriberStatus
    ) -> None:
        """A spam complaint is final for links: no button, and a forged post sends nothing."""
        member_id, url = self._member(sqlite_web)
        kept = form_token(sqlite_web.client.get(url))  # a form token from before the complaint
        sqlite_web.store.set_status(member_id, status, reason="test", source="test")
        page = sqlite_web.client.get(url)
        assert "Subscribe me again" not in page.text
        response = sqlite_web.client.post(url, data={"form_token": kept, "action": "resubscribe"})
        assert 400 == response.status_code
        assert not (sqlite_web.outbox / "confirmations").exists()
        assert status == sqlite_web.store.get(member_id).status

    def test_a_post_without_the_form_token_changes_nothing(self, sqlite_web: Web) -> None:
        _member_id, url = self._member(sqlite_web)
        before = snapshot(sqlite_web.store)
        response = sqlite_web.client.post(url, data={"action": "unsubscribe"})
        assert 400 == response.status_code
        assert before == snapshot(sqlite_web.store)

    def test_one_click_does_not_work_on_the_preference_centre(self, sqlite_web: Web) -> None:
        """Only the unsubscribe link takes one-click; here a form token is always needed."""
        member_id, url = self._member(sqlite_web)
        assert 400 == sqlite_web.client.post(url, content=ONE_CLICK).status_code
        assert "active" == sqlite_web.store.get(member_id).status


class TestHeaders:
    def test_token_pages_are_private_and_framed_by_nobody(self, sqlite_web: Web) -> None:
        [m] = sqlite_web.add("a@example.org")
        for purpose in Purpose:
            headers = sqlite_web.client.get(sqlite_web.link(m.id, purpose)).headers
            assert "no-store" == headers["cache-control"]
            assert "no-referrer" == headers["referrer-policy"]
            assert "DENY" == headers["x-frame-options"]
            csp = headers["content-security-policy"]
            assert "script-src" not in csp and "default-src 'none'" in csp
            assert "frame-ancestors 'none'" in csp

    def test_pages_have_no_script_and_work_on_a_phone(self, sqlite_web: Web) -> None:
        [m] = sqlite_web.add("a@example.org")
        for url in (
            sqlite_web.link(m.id, Purpose.unsubscribe),
            sqlite_web.link(m.id, Purpose.preferences),
            "/subscribe",
        ):
            page = sqlite_web.client.get(url).text
            assert "<script" not in page
            assert 'name="viewport"' in page and 'lang="en-GB"' in page


class TestRevokedLinks:
    """`mailer subscribers revoke-links`: a forwarded link stops working; new ones do."""

    def test_links_sent_before_stop_working_and_new_ones_open(self, web: Web) -> None:
        [m] = web.add("a@example.org")
        old = {purpose: web.link(m.id, purpose) for purpose in Purpose}
        web.store.revoke_links(m.id, reason="forwarded", source="test")
        for purpose, link in old.items():
            assert 404 == web.client.get(link).status_code, purpose
            assert 404 == web.client.post(link, content=ONE_CLICK).status_code, purpose
        assert "active" == web.store.get(m.id).status
        for purpose in Purpose:
            assert 200 == web.client.get(web.link(m.id, purpose, version=1)).status_code

    def test_a_confirmation_link_from_before_stops_working_too(self, sqlite_web: Web) -> None:
        [m] = sqlite_web.add("p@example.org", status=SubscriberStatus.pending)
        link = sqlite_web.confirm_link(m)
        sqlite_web.store.revoke_links(m.id, reason="forwarded", source="test")
        assert 404 == sqlite_web.client.get(link).status_code
        assert (
            200
            == sqlite_web.client.get(
                sqlite_web.confirm_link(sqlite_web.store.get(m.id))
            ).status_code
        )

    def test_links_made_before_links_had_versions_still_open(self, sqlite_web: Web) -> None:
        """Emails already in mailboxes carry the plain-id tokens: they keep working."""
        import hashlib

        from itsdangerous import URLSafeSerializer

        [m] = sqlite_web.add("a@example.org")
        legacy = URLSafeSerializer(
            SECRET, salt="mailer.unsubscribe", signer_kwargs={"digest_method": hashlib.sha256}
        ).dumps(m.id)
        assert 200 == sqlite_web.client.get(f"/unsubscribe/{legacy}").status_code
        sqlite_web.store.revoke_links(m.id, reason="forwarded", source="test")
        assert 404 == sqlite_web.client.get(f"/unsubscribe/{legacy}").status_code


class TestNoPageHandsOutAnotherLink:
    def test_an_old_confirmation_link_of_an_active_member(self, sqlite_web: Web) -> None:
        """A 7-day confirmation link must not become a permanent preference-centre link."""
        [m] = sqlite_web.add("p@example.org", status=SubscriberStatus.pending)
        link = sqlite_web.confirm_link(m)
        sqlite_web.store.confirm("p@example.org", source="test")
        for page in (sqlite_web.client.get(link), sqlite_web.client.post(link)):
            assert "/preferences/" not in page.text
            assert "/unsubscribe/" not in page.text
