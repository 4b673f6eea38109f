"""`mailer api-keys`: keys for the members API (create, list, revoke).

A key is printed once, when it is made; only a hash of it is stored (see
:mod:`mailer.store.apikeys`). The store is imported inside the commands, so that
`mailer --help` stays quick.
"""

from __future__ import annotations

from enum import StrEnum

import typer
from rich import box
from rich.table import Table

app = typer.Typer(
    name="api-keys",
    help="Keys for the members API (/api/v1): create, list, revoke.",
    no_args_is_help=True,
)


class ScopeOption(StrEnum):
    """mailer.store.apikeys.Scope, written out so that `mailer --help` need not import the store."""

    members_read = "members:read"
    members_write = "members:write"
    reports_read = "reports:read"


@app.command("create")
def create(
    name: str = typer.Argument(..., help="What the key is for, e.g. 'website' or 'crm'."),
    scope: list[ScopeOption] = typer.Option(
        ...,
        "--scope",
        help="What the key may do; give --scope again for each: members:read, "
        "members:write, reports:read.",
    ),
) -> None:
    """Make a key and print it, once: keep it in the website's or CRM's secret settings."""
    from mailer.cli.common import console
    from mailer.config import get_settings
    from mailer.store import open_store
    from mailer.store.apikeys import Scope, create_key

    with open_store(get_settings().database_url) as store:
        key, secret = create_key(store.engine, name, [Scope(s.value) for s in scope])
    console.print(
        f"API key '{key.name}' ({', '.join(sorted(key.scopes))}). It is shown only now:",
        highlight=False,
    )
    print(secret)


@app.command("list")
def list_(
    as_json: bool = typer.Option(False, "--json", help="Print the keys as JSON."),
) -> None:
    """Every key: its name, scopes, when it was made and last used, and if it was revoked."""
    from mailer.cli.common import console, print_json
    from mailer.config import get_settings
    from mailer.store import open_store
    from mailer.store.apikeys import list_keys

    with open_store(get_settings().database_url) as store:
        keys = list_keys(store.engine)
    if as_json:
        print_json([key.to_json() for key in keys])
        return
    if not keys:
        console.print("No API keys yet: `mailer api-keys create NAME --scope ...` makes one.")
        return
    table = Table(box=box.SIMPLE_HEAD, show_edge=False)
    for column in ("Name", "Scopes", "Created", "Last used", "Revoked"):
        table.add_column(column, overflow="fold")
    for key in keys:
        table.add_row(
            key.name,
            " ".join(sorted(key.scopes)),
            f"{key.created_at:%Y-%m-%d %H:%M}",
            f"{key.last_used_at:%Y-%m-%d %H:%M}" if key.last_used_at else "never",
            f"{key.revoked_at:%Y-%m-%d %H:%M}" if key.revoked_at else "",
        )
    console.print(table)


@app.command("revoke")
def revoke(name: str = typer.Argument(..., help="The key's name, as `list` shows it.")) -> None:
    """Stop a key at once: its next request is refused (401)."""
    from mailer.cli.common import console
    from mailer.config import get_settings
    from mailer.store import open_store
    from mailer.store.apikeys import revoke_key

    with open_store(get_settings().database_url) as store:
        key = revoke_key(store.engine, name)
    console.print(f"API key '{key.name}' is revoked.", highlight=False)
