"""The blueprint datastore: an OpenAPI blueprint becomes a validated document service."""

__version__ = "0.1.0"
