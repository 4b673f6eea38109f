"""Stage 1, the issue file: an editor's YAML in, a validated :class:`~mailer.issues.model.Issue` out.

* :mod:`~mailer.issues.model`: the Issue as validated data, and what checking a file reports.
* :mod:`~mailer.issues.source`: the file as it is read, YAML nodes with line marks.
* :mod:`~mailer.issues.wording`: every problem said in editors' words.
* :mod:`~mailer.issues.check`: :func:`~mailer.issues.check.load_issue` and
  :func:`~mailer.issues.check.check_issue`, which the rest of mailer calls.
"""
