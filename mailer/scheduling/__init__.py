"""The fortnightly scheduler: which slot is due, which issue it sends, and sending it once.

* :mod:`~mailer.scheduling.slots`: the slots, from ``[schedule]`` in mailer.toml
  (APScheduler's ``CalendarIntervalTrigger``) and the clock.
* :mod:`~mailer.scheduling.issues`: the issue file for a slot's day, and its state.
* :mod:`~mailer.scheduling.runner`: one tick at time *T*: catch up within the
  lateness, claim the slot, send it (:mod:`mailer.sending.send`), tell the editors.
* :mod:`~mailer.scheduling.notices`: the editors' emails.
* :mod:`~mailer.scheduling.status`: what ``mailer schedule`` and ``/healthz`` show.
* :mod:`~mailer.scheduling.service`: APScheduler calling the tick until a signal
  (``python scheduler.py``).

The claims, notices and heartbeats live in the store: :mod:`mailer.store.slots`.
"""
