"""The studio over HTTP: live events, the guards on a page that can send mail, and bad files."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import httpx
import pytest
from helpers.outbox import recipients
from helpers.studio import EDITOR, WINTER, Studio, start_studio

from mailer.studio.spam import INSTALL


def first_event_after(studio: Studio, change: object) -> tuple[str, float]:
    """The first event the stream sends after ``change()`` runs, and how long it took."""
    found: list[tuple[str, float]] = []
    ready = threading.Event()

    def listen() -> None:
        with (
            httpx.Client(base_url=studio.url, timeout=10) as client,
            client.stream("GET", "/events") as stream,
        ):
            for line in stream.iter_lines():
                if line.startswith("event: hello"):
                    ready.set()
                elif line.startswith("event: change"):
                    found.append(("change", time.monotonic()))
                    return

    listener = threading.Thread(target=listen, daemon=True)
    listener.start()
    assert ready.wait(10)
    started = time.monotonic()
    change()  # type: ignore[operator]
    listener.join(10)
    assert found, "no change event"
    return found[0][0], found[0][1] - started


class TestLiveEvents:
    def test_a_save_is_announced_within_a_second(self, studio: Studio) -> None:
        """The event stream says "change" within a second of an issue file being saved."""
        kind, took = first_event_after(
            studio, lambda: studio.edit(studio.issue(), "status: ready", "status: draft")
        )

        assert "change" == kind
        assert took < 1.0, f"{took:.2f} s"

    def test_files_that_are_not_issues_are_ignored(self, studio: Studio) -> None:
        """An editor's swap file in the issues folder changes nothing."""
        version = studio.workspace.version
        (studio.folder / "issues" / f".{WINTER}.yaml.swp").write_bytes(b"vim")
        (studio.folder / "issues" / "notes.txt").write_text("ideas", encoding="utf-8")
        studio.edit(studio.issue(), "status: ready", "status: draft")  # then one that counts

        took = wait_until(lambda: studio.workspace.version > version)

        assert took < 5
        assert version + 1 == studio.workspace.version


def wait_until(condition: object, timeout: float = 10.0) -> float:
    start = time.monotonic()
    while not condition():  # type: ignore[operator]
        assert time.monotonic() - start < timeout, "not true in time"
        time.sleep(0.02)
    return time.monotonic() - start


class TestBadFiles:
    def test_a_broken_mailer_toml_is_shown_and_the_server_lives_on(self, studio: Studio) -> None:
        """A mistake in mailer.toml is shown on the page; the last good settings stay in use."""
        config = studio.folder / "mailer.toml"
        good = config.read_text(encoding="utf-8")
        version = studio.workspace.version
        config.write_text(
            good.replace('brand_colour = "#1f5c4a"', 'brand_colour = "green"'), "utf-8"
        )
        wait_until(lambda: studio.workspace.version > version)

        page = studio.client.get(f"/issues/{WINTER}")

        assert 200 == page.status_code
        assert "mailer.toml has a problem" in page.text
        assert "brand_colour: String should match pattern" in page.text
        assert 'data-frame="phone"' in page.text  # still previewed, with the last good settings

    def test_an_issue_that_does_not_exist(self, studio: Studio) -> None:
        """An unknown issue is a 404 naming the issues there are."""
        answer = studio.client.get("/issues/2026-12-31-nope")

        assert 404 == answer.status_code
        assert f"Issues there: 2026-12-17-nobody-alone-this-christmas, {WINTER}." in answer.text

    def test_a_template_that_does_not_compile_is_a_problem_on_the_page(
        self, studio: Studio
    ) -> None:
        """A broken template is reported where the preview was; the server answers on."""
        template = studio.folder / "templates" / "email.mjml.j2"
        version = studio.workspace.version
        template.write_text(template.read_text("utf-8") + "{% if %}", encoding="utf-8")
        wait_until(lambda: studio.workspace.version > version)

        page = studio.client.get(f"/issues/{WINTER}")

        assert 200 == page.status_code
        assert "template email.mjml.j2" in page.text
        assert 'data-frame="phone"' not in page.text


class TestSendTest:
    def send(self, studio: Studio, body: object, token: str | None = None) -> httpx.Response:
        headers = {"X-Studio-Token": token if token is not None else studio.token()}
        return studio.client.post("/send-test", content=json.dumps(body), headers=headers)

    def test_only_the_editors_get_it_whatever_the_request_says(self, studio: Studio) -> None:
        """The request names an issue and a variant, never a recipient: extra fields are ignored."""
        answer = self.send(
            studio,
            {"issue": WINTER, "variant": "wales", "to": "someone@example.net", "emails": ["x@y.z"]},
        )

        assert (200, ["editor@connected-communities.example.org"]) == (
            answer.status_code,
            answer.json()["sent"],
        )
        assert {EDITOR: 1} == dict(recipients(studio.outbox / f"{WINTER}--test"))

    def test_without_the_pages_token_nothing_is_sent(self, studio: Studio) -> None:
        """A POST without the token (a form on another site) is refused and sends nothing."""
        answer = self.send(studio, {"issue": WINTER, "variant": "general"}, token="")

        assert (403, {"error": "refused: reload the studio's page"}) == (
            answer.status_code,
            answer.json(),
        )
        assert not (studio.outbox / f"{WINTER}--test").exists()

    def test_no_editors_in_mailer_toml(self, project: Path) -> None:
        """Without [schedule] editors there is nobody to send to: the page says how to add them."""
        config = project / "mailer.toml"
        text = config.read_text(encoding="utf-8")
        config.write_text(text.split("# The fortnightly slots")[0], encoding="utf-8")
        studio = start_studio(project)
        try:
            answer = self.send(studio, {"issue": WINTER, "variant": "general"})
            page = studio.client.get(f"/issues/{WINTER}").text
        finally:
            studio.stop()

        assert (
            409,
            "mailer.toml lists no editors to send tests to: add them to [schedule] as "
            'editors = ["you@example.org"]',
        ) == (answer.status_code, answer.json()["error"])
        assert "Add editors to [schedule] in mailer.toml to send tests" in page

    def test_an_unknown_variant(self, studio: Studio) -> None:
        """A variant naming segments mailer.toml does not define is refused."""
        answer = self.send(studio, {"issue": WINTER, "variant": "youth+atlantis"})

        assert (400, "'youth+atlantis' is not a variant of this issue") == (
            answer.status_code,
            answer.json()["error"],
        )


class TestHostGuard:
    @pytest.mark.parametrize("host", ["evil.example.net", "evil.example.net:8025", "127.0.0.1"])
    def test_another_host_name_is_refused(self, studio: Studio, host: str) -> None:
        """A request naming another host (DNS rebinding) gets 421 and nothing else."""
        answer = studio.client.get(f"/issues/{WINTER}", headers={"Host": host})

        assert (421, "This is mailer's studio: open it at its own address.") == (
            answer.status_code,
            answer.text,
        )

    def test_localhost_is_this_server(self, studio: Studio) -> None:
        """localhost:PORT names the same server as 127.0.0.1:PORT."""
        port = studio.server.port
        answer = studio.client.get(f"/issues/{WINTER}", headers={"Host": f"localhost:{port}"})

        assert 200 == answer.status_code


class TestSpamScore:
    def test_without_spamassassin_the_page_says_how_to_install_it(self, studio: Studio) -> None:
        """No spamassassin program: the spam box explains how to get one."""
        answer = studio.client.get(f"/spam/{WINTER}?variant=general")

        assert INSTALL in answer.text

    def test_with_spamassassin_the_score_and_the_rules(self, project: Path) -> None:
        """With SpamAssassin installed, its local score and matched rules are shown."""
        studio = start_studio(project, spamassassin="spamassassin")
        try:
            answer = studio.client.get(f"/spam/{WINTER}?variant=general")
        finally:
            studio.stop()

        assert "data-spam-score" in answer.text
        assert "points; SpamAssassin calls a message spam from 5.0." in answer.text
        assert "HTML_MESSAGE" not in answer.text  # rules worth 0 points are left out


class TestFindingMembers:
    def test_by_name_organisation_region_or_address(self, studio: Studio) -> None:
        """The member search matches any of the four, active members only, a dozen at most."""
        by_region = studio.client.get("/members", params={"q": "northern ireland"}).json()
        by_address = studio.client.get("/members", params={"q": "cardiff-lunch"}).json()

        assert 1 <= len(by_region) <= 12
        assert {"Northern Ireland"} == {member["region"] for member in by_region}
        assert ["Ffion Hughes"] == [member["name"] for member in by_address]

    def test_a_word_too_short_finds_nobody(self, studio: Studio) -> None:
        """One letter would match nearly everyone: the search waits for two."""
        assert [] == studio.client.get("/members", params={"q": "a"}).json()
