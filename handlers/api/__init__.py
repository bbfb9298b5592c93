"""The HTTP API under /api/v1: accounts and sessions, as JSON (docs/api.md, openapi.py)."""
