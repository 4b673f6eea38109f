"""What every command shares: consoles, the loaded configuration, JSON output."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from rich.console import Console

if TYPE_CHECKING:
    from mailer.config import Newsletter, Settings

console = Console()
err_console = Console(stderr=True)


def load_context() -> tuple[Settings, Newsletter]:
    """The environment's settings and the newsletter's mailer.toml, validated."""
    # Imported here: pydantic-settings and email-validator are a fifth of a second that
    # `mailer --help` has no need of.
    from mailer.config import get_settings, load_newsletter

    settings = get_settings()
    return settings, load_newsletter(settings.config_path)


def print_json(data: Any) -> None:
    """Machine-readable output on stdout, without rich's wrapping or colour."""
    print(json.dumps(data, indent=2, ensure_ascii=False, default=str))


def print_json_items(items: Iterable[Any]) -> int:
    """:func:`print_json` of a list, written item by item as they come; returns how many."""
    count = 0
    for item in items:
        text = json.dumps(item, indent=2, ensure_ascii=False, default=str)
        print("[" if count == 0 else ",", "\n  ", text.replace("\n", "\n  "), sep="", end="")
        count += 1
    print("\n]" if count else "[]")
    return count
