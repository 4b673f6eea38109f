"""The members API: ``/api/v1`` for the website and the CRM, described at ``/api/openapi.json``."""
