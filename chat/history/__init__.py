"""History to clients: what a joining or resuming client missed, and pages of older messages."""
