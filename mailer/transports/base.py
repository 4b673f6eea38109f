"""The transports' interface: the :class:`Transport` protocol and shared plumbing.

What a transport takes and gives back (:class:`~mailer.mail.Batch`,
:class:`~mailer.mail.Delivery`) lives in :mod:`mailer.mail`, which the store and the
send stage share without loading any transport.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from types import TracebackType
from typing import Protocol, Self, runtime_checkable

from mailer.mail import Batch, Delivery


@runtime_checkable
class Transport(Protocol):
    """Hands batches on. Use as a context manager, or call close() when done."""

    name: str
    # How many batches the send may hand over at once (from as many threads): 1 unless
    # the transport's ``send`` is safe to call concurrently.
    batches_in_flight: int

    def send(self, batch: Batch) -> list[Delivery]:
        """One Delivery per recipient of the batch, in order; raises only for a bug."""
        ...

    def prepare(self, batch: Batch) -> Callable[[], list[Delivery]]:
        """What ``send`` does, in two parts: the work that needs no answer (building the
        request) now, in the caller's thread; the call returned hands it over."""
        ...

    def close(self) -> None:
        """Release connections; the transport cannot send afterwards."""
        ...

    def __enter__(self) -> Self: ...

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...


class TransportBase:
    """Context-manager plumbing shared by the transports."""

    name = "base"
    batches_in_flight = 1

    def prepare(self, batch: Batch) -> Callable[[], list[Delivery]]:
        """By default, all of the work is done when the batch is handed over."""
        send: Callable[[Batch], list[Delivery]] = getattr(self, "send")  # noqa: B009
        return partial(send, batch)

    def close(self) -> None:
        """Nothing to release by default."""

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
