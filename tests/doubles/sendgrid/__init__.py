"""A stand-in for SendGrid's Mail Send API: a real HTTP server that validates like the real one."""

from .rules import check_mail_send
from .server import Accepted, Delivered, Fault, Received, SendGridDouble

__all__ = ["Accepted", "Delivered", "Fault", "Received", "SendGridDouble", "check_mail_send"]
