"""The API tokens' rate limit in Redis (chat/node/apilimit.py): one bucket per token shared by
every node's client, its wait from Redis's clock; without Redis each node counts alone."""

from __future__ import annotations

import logging

import pytest

from chat.node.apilimit import SharedBuckets
from chat.node.apiuse import ApiUse
from tests.serverproc import free_port
from tests.test_cluster import redis_db  # noqa: F401 (a fixture)


@pytest.mark.redis
@pytest.mark.gen_test(timeout=30)
async def test_two_clients_take_from_one_bucket_per_token(
    redis_db: str,  # noqa: F811 (a fixture)
) -> None:
    """Two nodes' buckets (two clients) spend one token's burst of 3 together; the fourth
    request waits about 1/rate s; another token has its own burst."""
    first, second = (SharedBuckets(redis_db, 0.5, 3) for _ in range(2))
    try:
        assert [await bucket.take("tok") for bucket in (first, second, first)] == [0, 0, 0]
        wait = await second.take("tok")
        assert wait is not None and 1.5 <= wait <= 2.0  # 1 / 0.5 s, less what refilled
        assert await first.take("other") == 0
        use = ApiUse(0.5, 3, None, second)
        assert await use.take("tok") == 2  # whole seconds, rounded up
    finally:
        await first.close()
        await second.close()


@pytest.mark.gen_test(timeout=30)
async def test_without_redis_a_node_counts_with_its_own_bucket(
        caplog: pytest.LogCaptureFixture) -> None:
    """Redis unreachable: take() answers from the node's bucket (burst 2, then a wait), and
    the outage is logged once at WARNING, not per request."""
    shared = SharedBuckets(f"redis://127.0.0.1:{free_port()}/0", 0.01, 2)
    use = ApiUse(0.01, 2, None, shared)
    try:
        with caplog.at_level(logging.WARNING, logger="chat.api"):
            assert [await use.take("tok") for _ in range(3)][:2] == [0, 0]
            assert await use.take("tok") > 0
        warnings = [r for r in caplog.records if "cannot reach Redis" in r.getMessage()]
        assert len(warnings) == 1
    finally:
        await shared.close()
