"""One node of the chat: the hub that dispatches commands, recovery, status and metrics."""
