"""A client for the Rafiki admin's REST API."""

from .client import Client, RafikiConnectionError, RafikiError

__all__ = ["Client", "RafikiConnectionError", "RafikiError"]
