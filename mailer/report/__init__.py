"""Reports: what happened to each issue, per segment, and how the list is doing over time.

* :mod:`mailer.report.queries`: the sums, done by the database.
* :mod:`mailer.report.build`: the report models made from them (:func:`issue_report`,
  :func:`list_report`).
* :mod:`mailer.report.models`: what a report says (pydantic; `--json` is their dump).
* :mod:`mailer.report.charts` and :mod:`mailer.report.html`: the self-contained HTML
  page with static SVG charts (`--html`); matplotlib is imported only there.
"""
