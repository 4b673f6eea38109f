"""The archive: the web version of sent issues, the general variant, no member's data."""

from __future__ import annotations

from helpers.web import Web, mark_sent

from mailer.store.ledger import Ledger, SendStatus, new_owner

SENT = "2026-12-03-winter-connections"
NOT_SENT = "2026-12-17-nobody-alone-this-christmas"


def test_a_send_that_reached_nobody_publishes_nothing(web: Web) -> None:
    """Before: a send that failed at once (a bad subject) left a row, and the archive showed the
    issue that reached nobody."""
    ledger, owner = Ledger(web.store.engine), new_owner()
    ledger.acquire(SENT, "outbox", owner)
    [member] = web.add("reader@example.org")
    ledger.claim(SENT, "general", [member.id], owner)  # in flight, never sent
    ledger.release(SENT, owner, SendStatus.stopped)
    assert f"/archive/{SENT}" not in web.client.get("/archive/").text
    assert 404 == web.client.get(f"/archive/{SENT}").status_code
    ledger.mark_accepted([(SENT, member.id, None)])
    assert 200 == web.client.get(f"/archive/{SENT}").status_code


def test_nothing_sent_yet(sqlite_web: Web) -> None:
    page = sqlite_web.client.get("/archive/")
    assert (200, True) == (page.status_code, "No issues have been sent yet" in page.text)


def test_a_sent_issue_is_listed_and_shown(sqlite_web: Web) -> None:
    mark_sent(sqlite_web, SENT)
    index = sqlite_web.client.get("/archive/")
    assert f'href="/archive/{SENT}"' in index.text
    assert "3 December 2026" in index.text
    page = sqlite_web.client.get(f"/archive/{SENT}")
    assert 200 == page.status_code
    assert "Put your warm space on the map" in page.text


def test_the_web_version_has_no_personal_data(sqlite_web: Web) -> None:
    """Merge tags take their fallbacks; no member's link tokens; the general variant only."""
    mark_sent(sqlite_web, SENT)
    page = sqlite_web.client.get(f"/archive/{SENT}").text
    assert "Hello there" in page
    assert "/unsubscribe/" not in page and "/preferences/" not in page
    assert "Nobody should feel left on read" not in page  # the youth-only section


def test_the_web_version_footer_speaks_to_any_reader(sqlite_web: Web) -> None:
    """Read by the public: no "you are receiving this", and links to sign up and past issues."""
    mark_sent(sqlite_web, SENT)
    page = sqlite_web.client.get(f"/archive/{SENT}").text
    assert "receiving this" not in page
    assert "preferences" not in page.lower() and "Unsubscribe" not in page
    assert f'href="{sqlite_web.url}/subscribe"' in page
    assert f'href="{sqlite_web.url}/archive/"' in page
    assert "Subscribe to Connected Communities" in page and "Read past issues" in page


def test_the_web_version_runs_no_script(sqlite_web: Web) -> None:
    mark_sent(sqlite_web, SENT)
    response = sqlite_web.client.get(f"/archive/{SENT}")
    csp = response.headers["content-security-policy"]
    assert "default-src 'none'" in csp and "script-src" not in csp
    assert "<script" not in response.text


def test_an_issue_never_sent_is_not_in_the_archive(sqlite_web: Web) -> None:
    """Drafts and unsent issues stay private, whatever is in issues/."""
    mark_sent(sqlite_web, SENT)
    assert 404 == sqlite_web.client.get(f"/archive/{NOT_SENT}").status_code
    assert NOT_SENT not in sqlite_web.client.get("/archive/").text


def test_paths_outside_the_issues_folder_are_404(sqlite_web: Web) -> None:
    for path in (
        "/archive/..%2Fmailer",
        "/archive/%2e%2e",
        "/archive/..",
        "/archive/.hidden",
        "/archive/a%00b",
    ):
        response = sqlite_web.client.get(path)
        # "/archive/.." is "/" once the client resolves the dots: the home page, not a file.
        home = response.url.path == "/"
        assert response.status_code in (404, 307, 308) or home, path


def test_a_sent_issue_whose_file_is_gone_is_404(sqlite_web: Web) -> None:
    mark_sent(sqlite_web, "2020-01-01-long-gone")
    assert 404 == sqlite_web.client.get("/archive/2020-01-01-long-gone").status_code
    assert 200 == sqlite_web.client.get("/archive/").status_code
