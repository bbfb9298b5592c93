"""Rooms' incoming and outgoing webhooks (issue 17; docs/api.md, "Webhooks")."""
