"""Real mail servers for the tests: Debian's Postfix and Dovecot (see :mod:`servers.mail`)."""
