"""The home page (``GET /``): the newsletter, its latest issues and the sign-up form.

The form is the sign-up page's own (``home.html`` extends ``subscribe.html``) and
posts to ``/subscribe``, so everything that protects sign-ups protects it too.
"""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from mailer.web.context import context_of
from mailer.web.signup import signup_page

__all__ = ["LATEST", "home"]

LATEST = 3  # issues listed on the home page; the archive has the rest


async def home(request: Request) -> Response:
    web = context_of(request)
    issues = (await run_in_threadpool(web.archive.issues))[:LATEST]
    return signup_page(web, "home.html", title="Home", issues=issues)
