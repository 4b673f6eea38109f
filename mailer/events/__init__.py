"""Stage 5, events back: what SendGrid says happened, written back to the list.

* :mod:`~mailer.events.sendgrid`: the Event Webhook's signature, and its events.
* :mod:`~mailer.events.rules`: what each event does to a member (pure functions).
* :mod:`~mailer.events.apply`: :func:`~mailer.events.apply.apply_events`, a batch
  stored once and written back in one transaction.
* :mod:`~mailer.events.reconcile`: settling deliveries whose outcome was unknown.
"""
