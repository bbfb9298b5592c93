"""Passkey ceremonies across a cluster's nodes (real processes on PostgreSQL and Redis): any
node finishes what another began, and only once."""

from __future__ import annotations

import pytest

from tests.apiclient import Api
from tests.softauthn import SoftAuthenticator
from tests.test_cluster import Cluster, cluster, redis_db  # noqa: F401 (fixtures)

pytestmark = pytest.mark.subprocess

ORIGIN = "http://localhost:8000"
CHALLENGES = "/api/v1/passkey-challenges"


@pytest.mark.redis
@pytest.mark.postgres
@pytest.mark.gen_test(timeout=90)
async def test_a_ceremony_begun_on_one_node_is_finished_on_another_once(
    cluster: Cluster,  # noqa: F811 (a fixture)
) -> None:
    """A signup begun on node A finishes on B; a sign-in begun on B finishes on A, and the
    same assertion sent to B after that is refused."""
    a, b = cluster(CHAT_RP_ID="localhost", CHAT_RP_ORIGINS=ORIGIN)
    on_a, on_b = Api(a.port), Api(b.port)
    key = SoftAuthenticator(ORIGIN)
    begun = await on_a.call("POST", CHALLENGES, {"purpose": "signup", "username": "ann"})
    assert begun.status == 200, begun.body
    made = await on_b.call("POST", "/api/v1/passkey-accounts",
                           {"credential": key.create(begun.body["options"])})
    assert made.status == 201, made.body
    asked = await on_b.call("POST", CHALLENGES, {"purpose": "signin"})
    assertion = key.get(asked.body["options"])
    signed = await on_a.call("POST", "/api/v1/passkey-sessions", {"credential": assertion})
    assert signed.status == 200, signed.body
    assert signed.body["account"]["username"] == "ann"
    replayed = await on_b.call("POST", "/api/v1/passkey-sessions", {"credential": assertion})
    assert replayed.status == 400
    assert replayed.body["code"] == "invalid_challenge"
    me = await on_b.call("GET", "/api/v1/me", token=signed.body["token"])
    assert me.body["account"]["username"] == "ann"
