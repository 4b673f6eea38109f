"""`mailer serve`: the web app (members' links, SendGrid's Event Webhook, archive, sign-up) under uvicorn."""

from __future__ import annotations

import typer


def serve(
    host: str = typer.Option(
        "127.0.0.1",
        "--host",
        help="Address to listen on. Keep 127.0.0.1 behind a reverse proxy on the same machine; "
        "0.0.0.0 listens on every interface.",
    ),
    port: int = typer.Option(8000, "--port", min=1, max=65535, help="Port to listen on."),
) -> None:
    """Run the web app: unsubscribe and preference links, SendGrid's Event Webhook, the archive and sign-up.

    Needs MAILER_SECRET_KEY (the key the emails' links were signed with) and, for
    the webhook, MAILER_SENDGRID_WEBHOOK_PUBLIC_KEY. With the outbox transport on a
    loopback address and no key, the outbox's public development key is used, so the
    links in its files open (and prove nothing). With SMTP or SendGrid it makes the
    checks `mailer send` makes: a real key, and an https MAILER_BASE_URL.

    Put it behind a reverse proxy that terminates HTTPS at MAILER_BASE_URL; client
    addresses are taken from X-Forwarded-For when the proxy is one of
    FORWARDED_ALLOW_IPS (default 127.0.0.1). Link tokens are removed from the access
    log. Unconfirmed sign-ups are deleted when their link expires, every hour.
    """
    import uvicorn

    from mailer.cli.common import err_console, load_context
    from mailer.config import is_loopback
    from mailer.web import create_app
    from mailer.web.server import server_config

    settings, newsletter = load_context()
    loopback = is_loopback(host)
    app = create_app(settings, newsletter, development_key_ok=loopback)
    if app.state.web.signer.development:
        err_console.print(
            "Using mailer's public development key: the links of the outbox's files open "
            "here, and prove nothing. Set MAILER_SECRET_KEY before any real use.",
            style="bold yellow",
        )
    if not loopback:
        err_console.print(
            f"Listening on {host}, beyond this machine, over plain HTTP: members' link tokens "
            "and the webhook would cross the network unencrypted. Put a reverse proxy that "
            "terminates HTTPS in front (see docs/deploying.md) and keep --host 127.0.0.1.",
            style="bold yellow",
        )
    err_console.print(
        f"Serving {newsletter.name} on http://{host}:{port} (public URL {settings.base_url})",
        highlight=False,
    )
    uvicorn.Server(server_config(app, host, port)).run()
