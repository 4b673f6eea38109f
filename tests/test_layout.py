"""The package layout keeps its promises: dependencies point one way, and imports stay light.

The pipeline's stages, in the order data flows, each a package of mailer:

    foundations -> store -> issues -> render -> audience -> transports -> sending -> events -> report

A module may import from its own package, the foundations, and the packages before
its own; the store, beneath every stage, imports only the foundations. Only the
shells (scheduling, cli, web) may import from anywhere. The top-level ``mailer``
package re-exports the public API lazily, so it is left out of the rule.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest
from doubles.sendgrid import SendGridDouble
from doubles.smtp import SmtpServer

PACKAGE = Path(__file__).resolve().parents[1] / "mailer"

FOUNDATIONS = ("errors", "headersafety", "config", "mail", "logs", "tokens", "verp")
STAGES = ("store", "issues", "render", "audience", "transports", "sending", "events", "report")
SHELLS = ("scheduling", "cli", "web", "studio")


def part_of(module: str) -> str:
    """The foundation module or package a dotted module name belongs to: 'mailer.store.x' -> 'store'."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def rank(part: str) -> int:
    if part in FOUNDATIONS:
        return -1
    return STAGES.index(part)


def module_name(path: Path) -> str:
    relative = path.relative_to(PACKAGE.parent).with_suffix("")
    parts = list(relative.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports_of(path: Path) -> set[str]:
    """Every mailer module a file imports, at the top, in functions or for type checking."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return {name for name in found if name.startswith("mailer.")}


MODULES = sorted(
    (module_name(path), path)
    for path in PACKAGE.rglob("*.py")
    if "migrations" not in path.parts and path != PACKAGE / "__init__.py"
)


def test_every_top_level_name_is_placed() -> None:
    """A new module or package at the top of mailer must be given its place in the rule."""
    placed = set(FOUNDATIONS + STAGES + SHELLS)
    found = {
        path.stem if path.is_file() else path.name
        for path in PACKAGE.iterdir()
        if (path.suffix == ".py" and path.stem != "__init__")
        or (path.is_dir() and (path / "__init__.py").exists())
    }
    assert placed == found


@pytest.mark.parametrize(("module", "path"), MODULES, ids=[name for name, _ in MODULES])
def test_dependencies_point_one_way(module: str, path: Path) -> None:
    """No module imports from a stage after its own; the store imports only foundations."""
    own = part_of(module)
    if own in SHELLS or module == "mailer":
        return
    wrong = []
    for imported in sorted(imports_of(path)):
        theirs = part_of(imported)
        if theirs in ("", own) or theirs not in FOUNDATIONS + STAGES + SHELLS:
            continue  # the root package, the module's own package, or a name in a module
        if theirs in SHELLS or rank(theirs) > rank(own) or (own == "store" and rank(theirs) >= 0):
            wrong.append(imported)
    assert [] == wrong, f"{module} reaches forward to {wrong}"


def loaded_after(statement: str) -> set[str]:
    """The modules a fresh interpreter has loaded after running *statement*."""
    code = f"{statement}\nimport json, sys\nprint(json.dumps(sorted(sys.modules)))"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    return set(json.loads(result.stdout.splitlines()[-1]))  # after what the statement printed


def top_level(modules: set[str]) -> set[str]:
    return {name.split(".")[0] for name in modules}


class TestImportsStayLight:
    def test_the_store_loads_no_transport(self) -> None:
        """The store records deliveries without loading SendGrid's client or smtplib."""
        loaded = loaded_after("import mailer.store, mailer.store.ledger, mailer.store.eventlog")
        assert "sqlalchemy" in top_level(loaded)  # the check can see what it looks for
        assert set() == {"sendgrid", "smtplib", "python_http_client"} & top_level(loaded)
        assert not [name for name in loaded if name.startswith("mailer.transports")]

    def test_the_transports_load_a_backend_only_when_opened(self) -> None:
        loaded = loaded_after("import mailer.transports")
        assert set() == {"sendgrid", "smtplib", "python_http_client"} & top_level(loaded)
        opened = loaded_after(
            "from mailer.config import Settings\n"
            "from mailer.transports import open_transport\n"
            "open_transport(Settings(transport='smtp', smtp_url='smtp://127.0.0.1:1',"
            " secret_key='k' * 32)).close()"
        )
        assert "smtplib" in top_level(opened)
        assert "sendgrid" not in top_level(opened)

    def test_the_segment_rules_load_no_database(self) -> None:
        """Which segments a member is in is worked out without SQLAlchemy."""
        loaded = loaded_after("import mailer.audience.segments")
        assert "pydantic" in top_level(loaded)
        assert set() == {"sqlalchemy", "alembic", "psycopg"} & top_level(loaded)

    def test_importing_mailer_loads_only_its_own_top(self) -> None:
        """The public API is lazy: `import mailer` loads none of the stages."""
        loaded = loaded_after("import mailer")
        assert {"mailer"} == {name for name in loaded if name.startswith("mailer")}

    def test_help_loads_no_stage(self) -> None:
        """`mailer --help` loads the command line and nothing it does not show."""
        loaded = loaded_after(
            "import sys\nfrom mailer.cli import main\nsys.argv = ['mailer', '--help']\n"
            "try:\n    main()\nexcept SystemExit:\n    pass"
        )
        assert "typer" in top_level(loaded)
        heavy = {"pydantic", "pydantic_settings", "sqlalchemy", "jinja2", "mjml", "matplotlib"}
        assert set() == heavy & top_level(loaded)
        stages = {part_of(name) for name in loaded if name.startswith("mailer.")}
        assert set() == stages & set(STAGES) - {"store"}  # store.models: the --status choices

    def test_a_dry_run_loads_only_what_a_send_uses(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """`mailer send --dry-run` on SQLite: no web app, scheduler, reports, Alembic or psycopg."""
        from mailer.store import open_store

        url = f"sqlite:///{tmp_path / 'mailer.db'}"
        open_store(url).close()  # created and migrated: opening it again needs no Alembic
        monkeypatch.chdir(PACKAGE.parent)
        monkeypatch.setenv("MAILER_DATABASE_URL", url)
        loaded = loaded_after(
            "import sys\nfrom mailer.cli import main\n"
            "sys.argv = ['mailer', 'send', 'issues/2026-12-03-winter-connections.yaml', '--dry-run']\n"
            "try:\n    main()\nexcept SystemExit as exit:\n    assert not exit.code, exit.code"
        )
        assert {"sqlalchemy", "mjml"} <= top_level(loaded)
        unused = {"starlette", "uvicorn", "apscheduler", "matplotlib", "alembic", "psycopg"}
        assert set() == unused & top_level(loaded)
        assert set() == {"report", "web", "scheduling", "events"} & {
            part_of(name) for name in loaded if name.startswith("mailer.")
        }

    @pytest.mark.parametrize("transport", ["sendgrid", "smtp"])
    def test_a_send_loads_only_its_transport(
        self,
        transport: str,
        tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch,
        sendgrid_double: SendGridDouble,
        smtp_server: SmtpServer,
    ) -> None:
        """`mailer send --yes` loads its own transport's libraries and no other's: no SMTP or
        email-building for SendGrid, no HTTP client for SMTP, never the web app or reports."""
        from helpers.members import add_members

        from mailer.store import open_store

        url = f"sqlite:///{tmp_path / 'mailer.db'}"
        with open_store(url) as store:
            add_members(store, 3)
        monkeypatch.chdir(PACKAGE.parent)
        for name, value in {
            "MAILER_DATABASE_URL": url,
            "MAILER_TRANSPORT": transport,
            "MAILER_SECRET_KEY": "k" * 32,
            "MAILER_BASE_URL": "https://news.example.org",
            "SENDGRID_API_KEY": sendgrid_double.api_key,
            "MAILER_SENDGRID_API_URL": sendgrid_double.url,
            "MAILER_SMTP_URL": smtp_server.url(),
        }.items():
            monkeypatch.setenv(name, value)
        loaded = loaded_after(
            "import sys\nfrom mailer.cli import main\n"
            "sys.argv = ['mailer', 'send', 'issues/2026-12-03-winter-connections.yaml', '--yes']\n"
            "try:\n    main()\nexcept SystemExit as exit:\n    assert not exit.code, exit.code"
        )
        assert 3 == len(sendgrid_double.deliveries()) + len(smtp_server.messages)  # it did send
        unused = {"starlette", "uvicorn", "apscheduler", "matplotlib", "alembic", "psycopg"}
        if transport == "sendgrid":
            assert "python_http_client" in top_level(loaded)
            unused |= {"smtplib", "sendgrid", "ellipticcurve"}  # the client's HTTP part only
        else:
            assert "smtplib" in top_level(loaded)
            unused |= {"sendgrid", "python_http_client"}
            assert set() == {"urllib.request", "http.client"} & loaded
        assert set() == unused & top_level(loaded)
        transports = {
            name.split(".")[2] for name in loaded if name.startswith("mailer.transports.")
        }
        assert transports <= {transport, "base", "ratelimit", "message", "variant"}
        assert "outbox" not in transports
