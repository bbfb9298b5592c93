"""Tornado handlers: translate HTTP and WebSocket events into calls on chat/, and back."""
