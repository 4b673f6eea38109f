"""The fortnightly scheduler: `python scheduler.py`.

Not built yet: sending on the fortnightly slot (APScheduler's CalendarIntervalTrigger,
a claim row per slot in the database) arrives with the sending and scheduling work.
Until then this entry point says so and exits, rather than pretending to run.
"""

from __future__ import annotations

import sys


def main() -> int:
    print(
        "error: the scheduler is not built yet. Validate and preview issues with "
        "`mailer validate` and `mailer preview` meanwhile.",
        file=sys.stderr,
    )
    return 2


if __name__ == "__main__":
    sys.exit(main())
