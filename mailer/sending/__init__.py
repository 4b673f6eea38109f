"""Stage 4, the send: an issue to its audience through a transport, exactly once.

* :mod:`~mailer.sending.send`: :func:`~mailer.sending.send.send_issue`, what
  ``mailer send ISSUE --yes`` and the scheduler run.
* :mod:`~mailer.sending.run`: :class:`~mailer.sending.run.SendRun`, batch by batch,
  each claimed in the send ledger before it is handed over and recorded after.
* :mod:`~mailer.sending.personalise`: each member's values and signed links.
* :mod:`~mailer.sending.parallel`: a large send shared between processes.
* :mod:`~mailer.sending.proofs`: test sends (``--test EMAIL``), outside the ledger.
"""
