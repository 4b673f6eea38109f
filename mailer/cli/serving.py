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
    the webhook, MAILER_SENDGRID_WEBHOOK_PUBLIC_KEY. Put it behind a reverse proxy
    that terminates HTTPS at MAILER_BASE_URL; client addresses are taken from
    X-Forwarded-For when the proxy is one of FORWARDED_ALLOW_IPS (default 127.0.0.1).
    Link tokens are removed from the access log.
    """
    import uvicorn

    from mailer.cli.common import err_console, load_context
    from mailer.web import create_app
    from mailer.web.logs import log_config

    settings, newsletter = load_context()
    app = create_app(settings, newsletter)
    err_console.print(
        f"Serving {newsletter.name} on http://{host}:{port} (public URL {settings.base_url})"
    )
    uvicorn.run(
        app,
        host=host,
        port=port,
        log_config=log_config(),
        proxy_headers=True,
        server_header=False,
        ws="none",
    )
