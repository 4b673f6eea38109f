"""The fortnightly scheduler: ``python scheduler.py``, run as a service next to ``mailer serve``.

Every other week at the time ``[schedule]`` in mailer.toml gives, it sends the
slot's ready issue exactly once, as ``mailer send ISSUE --yes`` would; it tells
the editors when nothing is ready, and reminds them beforehand. Settings come
from the same ``MAILER_*`` environment as the ``mailer`` command. Stop it with
SIGTERM or Ctrl+C: a send in progress finishes its current batch first.

The work is in :mod:`mailer.scheduling` (see :mod:`mailer.scheduling.service`);
this file only sets up logging and reports configuration errors.
"""

from __future__ import annotations

import logging
import sys


def main() -> int:
    from mailer.config import get_settings, load_newsletter
    from mailer.errors import MailerError
    from mailer.logs import configure_logging
    from mailer.scheduling.checks import require
    from mailer.scheduling.service import serve

    configure_logging()
    try:
        settings = get_settings()
        configure_logging(settings.log_level.value, settings.log_format.value)
        newsletter = load_newsletter(settings.config_path)
        require(settings, newsletter, "scheduler")
        return serve(settings, newsletter)
    except MailerError as error:
        logging.getLogger("mailer.scheduler").error("%s", error)
        return error.exit_code


if __name__ == "__main__":
    sys.exit(main())
