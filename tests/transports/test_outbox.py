"""The outbox transport: one whole .eml per recipient under outbox/<issue>/."""

from __future__ import annotations

import os
from collections.abc import Callable
from email.parser import BytesParser
from email.policy import default
from pathlib import Path

import pytest

from mailer.mail import Batch, Recipient
from mailer.transports.outbox import OutboxTransport, file_name, write_atomically

MakeBatch = Callable[..., Batch]
MakeRecipient = Callable[..., Recipient]


def files(folder: Path) -> list[str]:
    """Every file in the folder, hidden ones included, sorted."""
    return sorted(path.name for path in folder.iterdir())


class TestFileName:
    def test_plain_address(self) -> None:
        """A safe address is its own file name, lower-cased."""
        assert "ann.lee+news@example.com.eml" == file_name("Ann.Lee+News@Example.com")

    def test_unsafe_characters(self) -> None:
        """Characters unsafe in a file name are replaced, and a hash keeps the name unique."""
        name = file_name("a/../b@example.com")
        assert (True, True) == ("/" not in name, name.endswith(".eml"))

    def test_unique(self) -> None:
        """Addresses that sanitise alike still get different files."""
        assert file_name("a_b@example.com") != file_name("a/b@example.com")

    def test_no_hidden_files(self) -> None:
        """A name never starts with a dot (temporary files do)."""
        assert not file_name(".hidden@example.com").startswith(".")

    def test_long_address(self) -> None:
        """A very long address still makes a name within file system limits."""
        assert len(file_name("x" * 64 + "@" + "d" * 180 + ".example.com").encode()) <= 255


class TestOutboxTransport:
    def test_layout(self, tmp_path: Path, make_batch: MakeBatch) -> None:
        """Each recipient's message is outbox/<issue>/<address>.eml."""
        OutboxTransport(tmp_path).send(make_batch(3))
        expected = [f"member{i}@example.com.eml" for i in range(3)]
        assert (["2026-01-08-winter"], expected) == (
            files(tmp_path),
            files(tmp_path / "2026-01-08-winter"),
        )

    def test_deliveries(self, tmp_path: Path, make_batch: MakeBatch) -> None:
        """Every recipient is reported sent, with the Message-ID written in their file."""
        transport = OutboxTransport(tmp_path)
        batch = make_batch(2)
        deliveries = transport.send(batch)
        written = [
            BytesParser(policy=default).parsebytes(transport.path_for(batch, r).read_bytes())[
                "Message-ID"
            ]
            for r in batch.recipients
        ]
        assert (["sent", "sent"], written) == (
            [d.state for d in deliveries],
            [d.message_id for d in deliveries],
        )

    def test_file_is_the_message(self, tmp_path: Path, make_batch: MakeBatch) -> None:
        """The file parses as the recipient's own message."""
        transport = OutboxTransport(tmp_path)
        batch = make_batch(1)
        transport.send(batch)
        message = BytesParser(policy=default).parsebytes(
            transport.path_for(batch, batch.recipients[0]).read_bytes()
        )
        assert ("member0@example.com", "Hello Member0: the winter issue") == (
            message["To"].addresses[0].addr_spec,
            message["Subject"],
        )

    def test_the_envelope_sender_is_the_return_path(
        self, tmp_path: Path, make_batch: MakeBatch, make_recipient: MakeRecipient
    ) -> None:
        """A recipient's VERP envelope sender is the file's first line, as a server would store it;
        a recipient without one gets no Return-Path."""
        verp = "bounces+b1-aaaaaaaa-bbbbbbbbbbbbbbbb@news.example.org"
        transport = OutboxTransport(tmp_path)
        batch = make_batch(recipients=[make_recipient(1, return_path=verp), make_recipient(2)])
        transport.send(batch)
        first, second = (transport.path_for(batch, r).read_bytes() for r in batch.recipients)
        assert (f"Return-Path: <{verp}>\r\n".encode(), False) == (
            first.split(b"\r\n", 1)[0] + b"\r\n",
            b"Return-Path" in second,
        )

    def test_rerun_overwrites(self, tmp_path: Path, make_batch: MakeBatch) -> None:
        """Sending the same batch again replaces each file rather than adding one."""
        transport = OutboxTransport(tmp_path)
        batch = make_batch(3)
        first = transport.send(batch)
        second = transport.send(batch)
        folder = tmp_path / "2026-01-08-winter"
        message_id = BytesParser(policy=default).parsebytes(
            (folder / "member0@example.com.eml").read_bytes()
        )["Message-ID"]
        assert (3, second[0].message_id) == (len(files(folder)), message_id)
        assert first[0].message_id != second[0].message_id

    def test_no_temporary_files_left(self, tmp_path: Path, make_batch: MakeBatch) -> None:
        """After a send, the folder holds only the messages."""
        OutboxTransport(tmp_path).send(make_batch(5))
        assert [] == [n for n in files(tmp_path / "2026-01-08-winter") if not n.endswith(".eml")]

    def test_unwritable_folder(self, tmp_path: Path, make_batch: MakeBatch) -> None:
        """When the folder cannot be made, every recipient fails with the reason."""
        blocker = tmp_path / "blocked"
        blocker.write_text("a file where the outbox folder should be")
        deliveries = OutboxTransport(blocker).send(make_batch(2))
        assert [("failed", True), ("failed", True)] == [
            (d.state, "could not write the outbox file" in (d.error or "")) for d in deliveries
        ]

    def test_rate_limited(self, tmp_path: Path, make_batch: MakeBatch) -> None:
        """Each message takes one token from the limiter."""
        taken: list[int] = []

        class Counting:
            def acquire(self, count: int = 1) -> float:
                taken.append(count)
                return 0.0

        OutboxTransport(tmp_path, limiter=Counting()).send(make_batch(3))  # type: ignore[arg-type]
        assert [1, 1, 1] == taken


class TestWriteAtomically:
    def test_writes(self, tmp_path: Path) -> None:
        """The file holds exactly the data."""
        write_atomically(tmp_path / "m.eml", b"data")
        assert b"data" == (tmp_path / "m.eml").read_bytes()

    def test_crash_before_rename_leaves_old_file_whole(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """If writing fails, the previous file is untouched and no temporary file remains."""
        target = tmp_path / "m.eml"
        target.write_bytes(b"old message")

        def crash(src: str, dst: str) -> None:
            raise OSError("disk full")

        monkeypatch.setattr(os, "replace", crash)
        with pytest.raises(OSError, match="disk full"):
            write_atomically(target, b"new message")
        assert (b"old message", ["m.eml"]) == (target.read_bytes(), files(tmp_path))

    def test_crash_leaves_no_file(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        """If the first write fails, there is no file at all, not a partial one."""

        def crash(fd: int) -> None:
            raise OSError("I/O error")

        monkeypatch.setattr(os, "fsync", crash)
        with pytest.raises(OSError, match="I/O error"):
            write_atomically(tmp_path / "m.eml", b"new message")
        assert [] == files(tmp_path)

    def test_written_in_the_same_folder(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """The temporary file is a hidden sibling of the target, so the rename is atomic."""
        seen: list[tuple[str, str]] = []
        real_replace = os.replace

        def spy(src: str, dst: str) -> None:
            seen.append((os.path.dirname(src), Path(src).name[0]))
            real_replace(src, dst)

        monkeypatch.setattr(os, "replace", spy)
        write_atomically(tmp_path / "m.eml", b"x")
        assert [(str(tmp_path), ".")] == seen
