"""`mailer send` as a user runs it: refusals, confirmation, --dry-run, --test, --json, exit status."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from doubles.sendgrid import SendGridDouble
from helpers.members import add_members
from helpers.outbox import outbox_files
from helpers.owners import holder_command, project_env
from helpers.project import BASE_URL, ROOT, SAMPLE_ISSUE
from helpers.sending import SECRET, SG_KEY
from typer.testing import CliRunner, Result

from mailer.cli import app
from mailer.store import SubscriberStore, open_store
from mailer.store.ledger import Ledger

ISSUE = "2026-12-03-winter-connections"
Invoke = Callable[..., Result]


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """The environment of a project with a store and an outbox in tmp_path."""
    values = {
        "MAILER_CONFIG_PATH": str(ROOT / "mailer.toml"),
        "MAILER_DATABASE_URL": f"sqlite:///{tmp_path / 'mailer.db'}",
        "MAILER_OUTBOX_DIR": str(tmp_path / "outbox"),
    }
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    return values


@pytest.fixture
def project_store(env: dict[str, str]) -> SubscriberStore:
    """The store of that project (MAILER_DATABASE_URL), with six members, closed again."""
    with open_store(env["MAILER_DATABASE_URL"]) as opened:
        add_members(opened, 6)
        return opened


@pytest.fixture
def invoke() -> Invoke:
    def run(*args: str, input: str | None = None) -> Result:
        return CliRunner().invoke(app, ["send", *args], input=input)

    return run


def ledger_rows(store: SubscriberStore) -> int:
    return sum(count.count for count in Ledger(store.engine).counts(ISSUE))


def issue_copy(tmp_path: Path, **replace: str) -> Path:
    """The sample issue, with some text replaced, under the same file name."""
    text = SAMPLE_ISSUE.read_text(encoding="utf-8")
    for old, new in replace.items():
        text = text.replace(old, new)
    path = tmp_path / "issues" / SAMPLE_ISSUE.name
    path.parent.mkdir(exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


class TestSend:
    def test_sends_and_prints_a_summary_per_variant(
        self, project_store: SubscriberStore, invoke: Invoke, tmp_path: Path
    ) -> None:
        """With --yes it sends to everyone, then prints sent and skipped per variant and where the files are."""
        result = invoke(str(SAMPLE_ISSUE), "--yes")
        assert 0 == result.exit_code, result.output
        for heading in ("general", "wales", "youth", "Total", "Failed", "Unknown", "suppressed"):
            assert heading in result.output
        assert "one .eml file per member" in result.output
        assert "1 sending process." in result.output  # auto: a small list, one process
        assert 6 == len(outbox_files(tmp_path / "outbox" / ISSUE))

    def test_says_how_the_send_is_spread(
        self,
        project_store: SubscriberStore,
        invoke: Invoke,
        monkeypatch: pytest.MonkeyPatch,
        sendgrid_double: SendGridDouble,
    ) -> None:
        """Processes, and requests in flight in each, as the settings make them."""
        for name, value in {
            "MAILER_TRANSPORT": "sendgrid",
            "MAILER_SECRET_KEY": SECRET,
            "MAILER_BASE_URL": "https://news.example.org",
            "SENDGRID_API_KEY": sendgrid_double.api_key,
            "MAILER_SENDGRID_API_URL": sendgrid_double.url,
            "MAILER_SEND_PROCESSES": "2",
            "MAILER_SENDGRID_CONCURRENCY": "3",
        }.items():
            monkeypatch.setenv(name, value)
        result = invoke(str(SAMPLE_ISSUE), "--yes")
        assert 0 == result.exit_code, result.output
        assert "2 sending processes, 3 requests in flight each." in result.output
        assert 6 == len(sendgrid_double.delivery_counts())

    def test_a_second_run_says_everyone_has_it(
        self, project_store: SubscriberStore, invoke: Invoke
    ) -> None:
        """Running it again sends nothing and says so."""
        invoke(str(SAMPLE_ISSUE), "--yes")
        result = invoke(str(SAMPLE_ISSUE), "--yes")
        assert 0 == result.exit_code
        assert f"All 6 members in the audience already have {ISSUE}: nothing to send." in " ".join(
            result.output.split()
        )

    def test_asks_before_sending(self, project_store: SubscriberStore, invoke: Invoke) -> None:
        """Without --yes it asks; 'n' sends nothing (an answer, not a failure: exit 0), 'y' sends."""
        declined = invoke(str(SAMPLE_ISSUE), input="n\n")
        assert (0, 0) == (declined.exit_code, ledger_rows(project_store))
        assert "Send to 6 members through outbox? [y/N]" in declined.output
        assert "Nothing sent." == declined.output.splitlines()[-1].split("]: ")[-1]
        accepted = invoke(str(SAMPLE_ISSUE), input="y\n")
        assert (0, 6) == (accepted.exit_code, ledger_rows(project_store))

    def test_the_confirmation_shows_the_subject_a_member_without_a_name_reads(
        self, project_store: SubscriberStore, invoke: Invoke, tmp_path: Path
    ) -> None:
        """Not the raw merge tag: what lands in the inbox of a member with no first name."""
        issue = issue_copy(
            tmp_path,
            **{'subject: "Winter connections:': 'subject: "{{ first_name | Friends }}, winter:'},
        )
        declined = invoke(str(issue), input="n\n")
        text = " ".join(declined.output.split())
        assert "Sending Friends, winter: warm spaces" in text
        assert "{{" not in declined.output and "first_name" not in declined.output

    def test_prints_json(self, project_store: SubscriberStore, invoke: Invoke) -> None:
        """--json prints the outcome for scripts: totals and each variant."""
        result = invoke(str(SAMPLE_ISSUE), "--yes", "--json")
        summary = json.loads(result.stdout)
        assert {
            "sent": 6,
            "already_sent": 0,
            "suppressed": 0,
            "failed": 0,
            "failed_before": 0,
            "unknown": 0,
        } == summary["totals"]
        assert ["general", "wales", "youth"] == sorted(v["variant"] for v in summary["variants"])
        assert summary["complete"]


class TestRefusals:
    def test_refuses_a_draft(
        self, project_store: SubscriberStore, invoke: Invoke, tmp_path: Path
    ) -> None:
        """A draft is not sent to the list; the message says how to make it ready."""
        result = invoke(str(issue_copy(tmp_path, **{"status: ready": "status: draft"})), "--yes")
        assert 1 == result.exit_code
        assert "status: ready" in result.output and "--test" in result.output
        assert 0 == ledger_rows(project_store)

    def test_refuses_an_issue_that_does_not_validate(
        self, project_store: SubscriberStore, invoke: Invoke, tmp_path: Path
    ) -> None:
        """A file with problems is reported as PATH:LINE: message and nothing is sent."""
        path = issue_copy(tmp_path, **{"subject:": "subjcet:"})
        result = invoke(str(path), "--yes")
        assert 1 == result.exit_code
        assert f"{path}:4: 'subjcet' is not a field of the issue" in result.output
        assert 0 == ledger_rows(project_store)

    def test_real_mail_needs_the_secret_key(
        self, project_store: SubscriberStore, invoke: Invoke, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """SendGrid without MAILER_SECRET_KEY is a configuration error naming the variable."""
        monkeypatch.setenv("MAILER_TRANSPORT", "sendgrid")
        result = invoke(str(SAMPLE_ISSUE), "--yes")
        assert 2 == result.exit_code
        assert "MAILER_SECRET_KEY is not set" in result.output

    def test_real_mail_needs_https_links(
        self, project_store: SubscriberStore, invoke: Invoke, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Unsubscribe links in real mail must be https."""
        monkeypatch.setenv("MAILER_TRANSPORT", "sendgrid")
        monkeypatch.setenv("MAILER_SECRET_KEY", SECRET)
        result = invoke(str(SAMPLE_ISSUE), "--yes")
        assert 2 == result.exit_code
        assert "must be https://" in result.output


class TestDryRun:
    def test_shows_who_gets_which_variant_and_changes_nothing(
        self, project_store: SubscriberStore, invoke: Invoke, tmp_path: Path
    ) -> None:
        """Counts per variant and the first addresses; nothing sent, nothing recorded."""
        result = invoke(str(SAMPLE_ISSUE), "--dry-run")
        assert 0 == result.exit_code
        assert "member000@example.org" in result.output and "youth" in result.output
        assert "nothing was sent and nothing was changed" in result.output
        assert (0, False) == (ledger_rows(project_store), (tmp_path / "outbox").exists())

    def test_as_json(self, project_store: SubscriberStore, invoke: Invoke) -> None:
        """--dry-run --json: each variant with its count and first addresses."""
        plan = json.loads(invoke(str(SAMPLE_ISSUE), "--dry-run", "--json").stdout)
        youth = next(v for v in plan["variants"] if v["variant"] == "youth")
        assert (6, 2, ["member000@example.org", "member003@example.org"]) == (
            plan["to_send"],
            youth["to_send"],
            youth["first"],
        )

    def test_cannot_be_combined_with_changes(
        self, project_store: SubscriberStore, invoke: Invoke
    ) -> None:
        """--dry-run with --resolve-unknown is refused: a dry run changes nothing."""
        result = invoke(str(SAMPLE_ISSUE), "--dry-run", "--resolve-unknown", "resend")
        assert 2 == result.exit_code
        assert 0 == ledger_rows(project_store)

    def test_works_for_a_draft(
        self, project_store: SubscriberStore, invoke: Invoke, tmp_path: Path
    ) -> None:
        """A draft can be dry-run; the output says the real send will refuse it."""
        result = invoke(
            str(issue_copy(tmp_path, **{"status: ready": "status: draft"})), "--dry-run"
        )
        assert 0 == result.exit_code
        assert "will refuse it" in result.output


class TestTestSend:
    def test_sends_only_to_the_given_addresses_outside_the_ledger(
        self, project_store: SubscriberStore, invoke: Invoke, tmp_path: Path
    ) -> None:
        """--test mails those addresses, subject marked [TEST], a draft too; the ledger is untouched."""
        draft = issue_copy(tmp_path, **{"status: ready": "status: draft"})
        result = invoke(
            str(draft), "--test", "editor@example.org", "--test", "member001@example.org"
        )
        assert 0 == result.exit_code, result.output
        files = outbox_files(tmp_path / "outbox" / f"{ISSUE}--test")
        assert ["editor@example.org", "member001@example.org"] == sorted(files)
        assert all(str(m["Subject"]).startswith("[TEST] ") for m in files.values())
        assert 0 == ledger_rows(project_store)

    def test_members_get_their_own_variant_and_others_the_sample(
        self, project_store: SubscriberStore, invoke: Invoke, tmp_path: Path
    ) -> None:
        """A member's address gets their variant and name; another address the sample member's."""
        invoke(str(SAMPLE_ISSUE), "--test", "member001@example.org,editor@example.org")
        files = outbox_files(tmp_path / "outbox" / f"{ISSUE}--test")
        member_text = files["member001@example.org"].get_body(("plain",)).get_content()
        editor_text = files["editor@example.org"].get_body(("plain",)).get_content()
        assert "Shwmae Member001" in member_text
        assert "Hello Alex" in editor_text
        assert str(files["member001@example.org"]["Subject"]).startswith("[TEST] Shwmae!")


class TestUnknownDeliveries:
    @pytest.fixture
    def sendgrid_env(
        self, env: dict[str, str], sendgrid_double: SendGridDouble, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        for name, value in {
            "MAILER_TRANSPORT": "sendgrid",
            "SENDGRID_API_KEY": SG_KEY,
            "MAILER_SENDGRID_API_URL": sendgrid_double.url,
            "MAILER_SECRET_KEY": SECRET,
            "MAILER_BASE_URL": BASE_URL,
        }.items():
            monkeypatch.setenv(name, value)

    def test_unknown_are_reported_then_reconciled_from_events(
        self,
        project_store: SubscriberStore,
        sendgrid_env: None,
        sendgrid_double: SendGridDouble,
        invoke: Invoke,
        tmp_path: Path,
    ) -> None:
        """A lost answer exits 3 and explains; --reconcile with SendGrid's events settles it."""
        sendgrid_double.drop_next(accept=True)
        first = invoke(str(SAMPLE_ISSUE), "--yes")
        assert 3 == first.exit_code
        assert "--resolve-unknown=resend" in first.output
        events = tmp_path / "events.json"
        events.write_text(
            json.dumps(
                [
                    {
                        "event": "processed",
                        "email": d.email,
                        "sg_message_id": d.message_id,
                        **d.custom_args,
                    }
                    for d in sendgrid_double.deliveries()
                ]
            )
        )
        settled = invoke(str(SAMPLE_ISSUE), "--yes", "--reconcile", str(events))
        assert 0 == settled.exit_code, settled.output
        assert "nothing to send" in settled.output
        assert {1} == set(sendgrid_double.delivery_counts().values())
        assert 6 == len(sendgrid_double.delivery_counts())


def test_the_batch_limit_is_the_transports(invoke: Invoke) -> None:
    """--batch-size stops where a SendGrid request does: at 1000."""
    result = invoke(str(SAMPLE_ISSUE), "--dry-run", "--batch-size", "1001")
    assert 2 == result.exit_code
    assert "1000" in result.output


class TestRelease:
    """`mailer send ISSUE --release`: a claim stuck on a process that hangs, ended by hand."""

    def test_it_says_who_holds_it_and_asks_first(
        self, env: dict[str, str], project_store: SubscriberStore, invoke: Invoke
    ) -> None:
        holder = subprocess.Popen(
            holder_command(env["MAILER_DATABASE_URL"], ISSUE, hold=120),
            stdout=subprocess.PIPE,
            text=True,
            env=project_env(),
        )
        try:
            assert holder.stdout is not None
            assert "held" == holder.stdout.readline().strip()
            with open_store(env["MAILER_DATABASE_URL"]) as store:
                ledger = Ledger(store.engine)
                held = ledger.holder(ISSUE)
                assert held is not None and held.running
                declined = invoke(str(SAMPLE_ISSUE), "--release", input="n\n")
                assert 1 == declined.exit_code
                assert held.owner in declined.output
                assert "still running" in declined.output
                assert held.owner == (ledger.holder(ISSUE) or held).owner  # nothing changed

                released = invoke(str(SAMPLE_ISSUE), "--release", input="y\n")
                assert 0 == released.exit_code, released.output
                assert f"Released the send of {ISSUE} (held by {held.owner})" in " ".join(
                    released.output.split()
                )
                after = ledger.holder(ISSUE)
                assert after is not None and "" == after.owner
        finally:
            holder.kill()
            holder.wait()
            if holder.stdout is not None:
                holder.stdout.close()
        assert 0 == invoke(str(SAMPLE_ISSUE), "--yes").exit_code  # and the send carries on
        assert 6 == len(outbox_files(Path(env["MAILER_OUTBOX_DIR"]) / ISSUE))

    def test_nothing_to_release(self, project_store: SubscriberStore, invoke: Invoke) -> None:
        result = invoke(str(SAMPLE_ISSUE), "--release")
        assert 0 == result.exit_code
        assert "there is nothing to release" in " ".join(result.output.split())
