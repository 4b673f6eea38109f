"""mailer: fortnightly newsletters kept as files, sent exactly once."""

__version__ = "0.1.0"
