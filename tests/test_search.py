"""The `search` frame (chat/search/): what each asker may find, the filters, the errors."""

from __future__ import annotations

from typing import Any

import pytest

from chat.config import Settings
from chat_server import ChatApplication
from tests.helpers import ChatClient, Connect
from tests.test_auth_socket import bearer, error_of, signed_up
from tests.test_rooms import answer, app, make_room, team

__all__ = ["app"]  # the fixture: every test here runs on SQLite and on PostgreSQL


async def search(client: ChatClient, query: str, **fields: Any) -> dict[str, Any]:
    return await answer(client, {"type": "search", "query": query, **fields}, "search_results")


def places(results: dict[str, Any]) -> list[str]:
    """Where each hit is: its room, or `@` and the other side of a direct conversation."""
    assert results["type"] == "search_results", results
    return sorted(hit["room"] if "room" in hit else "@" + hit["with"]
                  for hit in results["results"])


async def say(client: ChatClient, room: str, text: str) -> int:
    await client.send({"type": "message", "room": room, "text": text})
    return int((await client.recv_type("message"))["id"])


async def dm(client: ChatClient, to: str, text: str) -> None:
    await client.send({"type": "dm", "to": to, "text": text})
    await client.recv_type("dm")


@pytest.mark.gen_test(timeout=60)
async def test_search_finds_only_what_the_asker_may_read(app: ChatApplication,
                                                         connect: Connect) -> None:
    """A private room's messages only for its members, never for a guest; direct messages
    only for their two parties; the room filter answers a private room as a missing one."""
    _, ann, bob, cat = await team(app, connect, "ann", "bob", "cat")
    await make_room(ann, "secret", visibility="private")
    await ann.join("ann", "secret")
    await say(ann, "secret", "deploy the secret plan")
    await say(ann, "general", "deploy to general")
    await dm(ann, "bob", "deploy between ann and bob")
    await dm(bob, "cat", "deploy between bob and cat")
    guest = await connect()
    await guest.join("gus")
    assert places(await search(ann, "deploy")) == ["@bob", "general", "secret"]
    assert places(await search(bob, "deploy")) == ["@ann", "@cat", "general"]
    assert places(await search(cat, "deploy")) == ["@bob", "general"]
    assert places(await search(guest, "deploy")) == ["general"]
    for outsider in (bob, guest):
        secret = await error_of(outsider, {"type": "search", "query": "deploy",
                                           "room": "secret"})
        nothing = await error_of(outsider, {"type": "search", "query": "deploy",
                                            "room": "nothing"})
        assert secret["code"] == nothing["code"] == "no_such_room"
        assert secret["reason"].replace("secret", "nothing") == nothing["reason"]
    # Narrowed to one conversation, a person, a time.
    assert places(await search(bob, "deploy", **{"with": "cat"})) == ["@cat"]
    assert places(await search(bob, "deploy", **{"from": "ANN"})) == ["@ann", "general"]
    assert places(await search(ann, "deploy", room="secret")) == ["secret"]
    assert places(await search(ann, "deploy", before="2000-01-01")) == []
    assert len(places(await search(ann, "deploy", after="2000-01-01T00:00:00Z"))) == 3
    # A hit says who, when, and marks the words found (no markup in the text).
    hit = (await search(ann, "SECRET pla*"))["results"][0]
    assert (hit["room"], hit["username"]) == ("secret", "ann")
    assert hit["excerpt"] == [["deploy the ", False], ["secret", True], [" ", False],
                              ["plan", True]]


@pytest.mark.gen_test(timeout=60)
async def test_a_removed_message_is_not_found(app: ChatApplication, connect: Connect) -> None:
    """A message a moderator removed is left out of search, for everyone."""
    _, ann, bob = await team(app, connect, "ann", "bob")
    await make_room(ann, "ops")
    await ann.join("ann", "ops")
    await bob.join("bob", "ops")
    gone = await say(bob, "ops", "the root password is hunter2")
    await say(bob, "ops", "hunter2 was the old one")
    assert (await answer(ann, {"type": "remove", "room": "ops", "id": gone},
                         "moderation"))["id"] == gone
    for client in (ann, bob):
        found = await search(client, "hunter2")
        assert [hit["id"] for hit in found["results"]] == [gone + 1]


@pytest.mark.gen_test(timeout=60)
async def test_a_banned_user_finds_nothing_of_the_room_and_a_leaver_nothing_private(
    app: ChatApplication, connect: Connect,
) -> None:
    """A ban from a public room, or leaving a private one, ends finding its messages."""
    _, ann, bob = await team(app, connect, "ann", "bob")
    await make_room(ann, "ops")
    await make_room(ann, "inner", visibility="private")
    await ann.send({"type": "invite", "room": "inner", "user": "bob"})
    await bob.recv_type("moderated")
    for room in ("ops", "inner"):
        await ann.join("ann", room)
        await bob.join("bob", room)
        await say(ann, room, f"rollout in {room}")
    assert places(await search(bob, "rollout")) == ["inner", "ops"]
    await answer(ann, {"type": "ban", "room": "ops", "user": "bob"}, "moderation")
    await bob.send({"type": "leave", "room": "inner"})
    await bob.recv_type("leave")
    assert places(await search(bob, "rollout")) == []
    assert places(await search(ann, "rollout")) == ["inner", "ops"]


@pytest.mark.gen_test(timeout=60)
async def test_search_pages_by_offset(app: ChatApplication, connect: Connect) -> None:
    """`limit` hits a page, `more` and `next_offset` while others follow; no hit twice."""
    _, ann = await team(app, connect, "ann")
    for n in range(5):
        await say(ann, "general", f"standup {n}")
    first = await search(ann, "standup", limit=3)
    assert (len(first["results"]), first["more"], first["next_offset"]) == (3, True, 3)
    second = await search(ann, "standup", limit=3, offset=first["next_offset"])
    assert (len(second["results"]), second["more"]) == (2, False)
    assert "next_offset" not in second
    ids = [hit["id"] for hit in first["results"] + second["results"]]
    assert sorted(ids) == sorted(set(ids)) and len(ids) == 5


@pytest.mark.gen_test(timeout=60)
@pytest.mark.settings(search_query_max_chars=40, search_page_max=10, search_offset_max=100)
async def test_bad_searches_are_refused_naming_the_value_and_the_limit(
    app: ChatApplication, connect: Connect,
) -> None:
    """Empty or too long queries, pages too big or too deep, bad dates: invalid_field."""
    assert app.hub.settings.search_page_max == 10
    _, ann = await team(app, connect, "ann")

    async def refused(**fields: Any) -> dict[str, Any]:
        got = await error_of(ann, {"type": "search", **fields})
        assert (got["code"], got["request"]) == ("invalid_field", "search"), got
        return got

    assert (await refused(query=" *** \"\" "))["field"] == "query"
    long = await refused(query="x" * 41)
    assert (long["field"], long["limit"]) == ("query", 40)
    assert "41" in long["reason"] and "40" in long["reason"]
    words = await refused(query=" ".join("abcdefghijklmnopq"))  # 17 words, in 33 characters
    assert (words["field"], words["limit"]) == ("query", 16)
    big = await refused(query="a", limit=11)
    assert (big["field"], big["limit"]) == ("limit", 10)
    deep = await refused(query="a", offset=101)
    assert (deep["field"], deep["limit"]) == ("offset", 100)
    date = await refused(query="a", after="yesterday")
    assert date["field"] == "after" and "'yesterday'" in date["reason"]
    assert (await refused(query="a", after=5, before=5))["field"] == "after"
    assert (await refused(query="a", room="general", **{"with": "ann"}))["field"] == "with"
    missing = await error_of(ann, {"type": "search"})
    assert (missing["code"], missing["field"]) == ("missing_field", "query")


@pytest.mark.gen_test(timeout=60)
@pytest.mark.settings(search_per_minute=1)
async def test_a_user_s_searches_are_paced(app: ChatApplication, connect: Connect) -> None:
    """Past a burst of 5, a user's searches (from any of its connections) are rate_limited."""
    _, ann = await team(app, connect, "ann")
    for _ in range(5):
        assert (await search(ann, "anything"))["type"] == "search_results"
    other = await connect(**bearer(await signed_up(app, "bob")))
    await other.join("bob")
    assert (await search(other, "anything"))["type"] == "search_results"  # bob's own pace
    got = await error_of(ann, {"type": "search", "query": "anything"})
    assert (got["code"], got["request"], got["limit"]) == ("rate_limited", "search", 1)


@pytest.mark.gen_test(timeout=30)
async def test_search_needs_a_join(connect: Connect) -> None:
    """A connection that has not joined cannot search."""
    client = await connect()
    got = await error_of(client, {"type": "search", "query": "x"})
    assert (got["code"], got["request"]) == ("not_joined", "search")


def test_search_settings_are_checked() -> None:
    """Search limits out of range are refused at start, naming the flag and the rule."""
    with pytest.raises(ValueError, match="--search-page-max is 0; it must be between 1 and 200"):
        Settings(search_page_max=0)
    with pytest.raises(ValueError, match="--search-query-max-chars is 1001"):
        Settings(search_query_max_chars=1001)
    with pytest.raises(ValueError, match="--search-offset-max is -1"):
        Settings(search_offset_max=-1)
    with pytest.raises(ValueError, match=r"--search-rank-max is 1000; it must be between "
                       r"search-offset-max \+ search-page-max \(1050\)"):
        Settings(search_rank_max=1000)
