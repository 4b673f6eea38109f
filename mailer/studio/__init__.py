"""Shell: the editor's studio behind ``mailer preview --serve``.

A local page (Starlette, no build step) listing the issues and showing the chosen
one as members will get it, updated within a second of any save to an issue file,
a template or mailer.toml: every variant the list produces, phone and desktop
side by side, dark mode, pictures off, the plain text, the inbox row, any member's
personalisation, and checks beside it (size, alt text, links, subject and
preheader, reading time, SpamAssassin, client support). It can send the variant
on screen to the editors of mailer.toml as a test, so it listens on 127.0.0.1
unless told otherwise.

* :mod:`~mailer.studio.workspace`: the files, checked and compiled, and their version.
* :mod:`~mailer.studio.page`: what the page shows for a request.
* :mod:`~mailer.studio.app`: the routes, live updates and the guards.
* :mod:`~mailer.studio.views`, :mod:`~mailer.studio.members`, :mod:`~mailer.studio.spam`.
"""

from mailer.studio.app import create_studio
from mailer.studio.workspace import Workspace

__all__ = ["Workspace", "create_studio"]
