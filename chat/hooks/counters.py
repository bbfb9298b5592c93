"""What /metrics counts of webhooks (chat/node/metrics.py's registry, one per application)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter


class HookCounters:
    """Incoming posts, and outgoing calls, retries, failures and drops."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        registry = registry if registry is not None else CollectorRegistry()
        self.posts = Counter(
            "chat_webhook_posts", "Incoming webhook requests, by result (posted, refused, "
            "rate_limited, not_found)", ["result"], registry=registry)
        self.calls = Counter("chat_webhook_calls", "Outgoing webhook calls made (retries "
                             "included)", registry=registry)
        self.retries = Counter("chat_webhook_call_retries", "Outgoing calls tried again after "
                               "a 5xx, a timeout or a refused connection", registry=registry)
        self.failures = Counter(
            "chat_webhook_call_failures", "Outgoing calls given up, by reason (status, timeout, "
            "refused_address, error)", ["reason"], registry=registry)
        self.dropped = Counter("chat_webhook_calls_dropped", "Outgoing calls dropped because "
                               "--webhook-queue was full", registry=registry)
        self.replies = Counter("chat_webhook_replies", "Replies of outgoing webhooks posted "
                               "into their room", registry=registry)
