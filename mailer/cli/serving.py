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
    checks `mailer send` makes: a real key, and an https MAILER_BASE_URL. It runs the
    start checks of `mailer doctor` that concern it and refuses to start naming each
    problem. MAILER_TRANSPORT must be set unless it listens on a loopback address,
    where the outbox is the default (the demo) and the banner says so.

    Put it behind a reverse proxy that terminates HTTPS at MAILER_BASE_URL; client
    addresses are taken from X-Forwarded-For when the proxy is one of
    FORWARDED_ALLOW_IPS (default 127.0.0.1). Link tokens are removed from the access
    log. Unconfirmed sign-ups are deleted when their link expires, every hour.
    """
    import logging

    import uvicorn

    from mailer.cli.common import load_context
    from mailer.config import TransportName, is_loopback
    from mailer.errors import MailerError
    from mailer.logs import configure_logging
    from mailer.scheduling.checks import require
    from mailer.web import create_app
    from mailer.web.server import server_config

    settings, newsletter = load_context()
    # Everything from here is logged, so that MAILER_LOG_FORMAT=json holds for every line.
    configure_logging(settings.log_level.value, settings.log_format.value)
    log = logging.getLogger("mailer.serve")
    loopback = is_loopback(host)
    try:
        require(settings, newsletter, "serve-loopback" if loopback else "serve")
        app = create_app(settings, newsletter, development_key_ok=loopback)
    except MailerError as error:
        log.error("%s", error)
        raise typer.Exit(error.exit_code) from None
    if app.state.web.signer.development:
        log.warning(
            "Using mailer's public development key: the links of the outbox's files open "
            "here, and prove nothing. Set MAILER_SECRET_KEY before any real use."
        )
    if settings.transport == TransportName.outbox and "transport" not in settings.model_fields_set:
        # Only on loopback: the checks above refuse this beyond the machine.
        log.warning(
            "MAILER_TRANSPORT is not set: on this machine only, sign-up and confirmation "
            "emails go to the outbox folder %s, not to people (the demo). Set MAILER_TRANSPORT "
            "before any real use.",
            settings.outbox_dir,
        )
    if not loopback:
        log.warning(
            "Listening on %s, beyond this machine, over plain HTTP: members' link tokens "
            "and the webhook would cross the network unencrypted. Put a reverse proxy that "
            "terminates HTTPS in front (see docs/deploying.md) and keep --host 127.0.0.1.",
            host,
        )
    log.info(
        "Serving %s on http://%s:%d (public URL %s; transport %s)",
        newsletter.name,
        host,
        port,
        settings.base_url,
        settings.transport,
    )
    config = server_config(
        app, host, port, log_level=settings.log_level.value, log_format=settings.log_format.value
    )
    uvicorn.Server(config).run()
