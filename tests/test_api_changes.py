"""Edits, deletes and reactions through the HTTP API: sockets see them live, the socket's rights
hold (another's message, a non-member, another pair's conversation, the read scope), and the
answers fit the OpenAPI document."""

from __future__ import annotations

from urllib.parse import quote

import pytest

from tests.apiclient import Api
from tests.helpers import Connect
from tests.test_api_openapi import check
from tests.test_api_tokens import api, bot_token, issued, signed_socket  # noqa: F401 (fixture)


@pytest.mark.gen_test(timeout=60)
async def test_a_bot_edits_reacts_and_deletes_and_sockets_see_it_live(
    api: Api, connect: Connect,  # noqa: F811 (the fixture)
) -> None:
    """A bot's edit, reaction (by shortcode) and delete of its own room message reach a socket
    in the room as `edited`, `reacted` and `deleted`; history then leaves the message out."""
    admin = await api.signed_up("root")
    bot = await bot_token(api, admin)
    assert (await api.call("PUT", "/api/v1/rooms/ops/membership", token=bot)).status == 200
    watcher = await signed_socket(connect, admin, "root", "ops")
    posted = await api.call("POST", "/api/v1/rooms/ops/messages", {"text": "deploy at 5"},
                            token=bot)
    message_id = posted.body["message"]["id"]
    await watcher.recv_type("message")
    path = f"/api/v1/rooms/ops/messages/{message_id}"
    edited = await api.call("PATCH", path, {"text": "deploy at 6"}, token=bot)
    assert edited.status == 200, edited.body
    live = await watcher.recv_type("edited")
    assert (live["id"], live["message"]) == (message_id, "deploy at 6")
    assert edited.body["message"] == live
    reacted = await api.call("PUT", f"{path}/reactions/{quote(':+1:')}", token=bot)
    assert reacted.status == 200, reacted.body
    assert (await watcher.recv_type("reacted"))["reactions"] == [
        {"emoji": "👍", "count": 1, "users": ["deploy-bot"]}]
    taken = await api.call("DELETE", f"{path}/reactions/{quote('👍')}", token=bot)
    assert taken.body["message"]["reactions"] == []
    assert (await watcher.recv_type("reacted"))["reactions"] == []
    assert (await api.call("DELETE", path, token=bot)).status == 204
    assert (await watcher.recv_type("deleted"))["id"] == message_id
    page = await api.call("GET", "/api/v1/rooms/ops/messages", token=bot)
    assert page.body["messages"] == []
    again = await api.call("DELETE", path, token=bot)
    assert (again.status, again.body["code"]) == (404, "no_such_message")


@pytest.mark.gen_test(timeout=60)
async def test_the_socket_s_rights_hold_over_the_api(api: Api) -> None:  # noqa: F811
    """Another account's message cannot be edited (403 forbidden) nor, by a member, deleted;
    a room's owner deletes it; a non-member of a private room gets no_such_room; a read-only
    token gets insufficient_scope; another pair's direct message is no_such_message."""
    await api.signed_up("root")  # the first account is the admin: the others are not
    ann, bob, cat = [await api.signed_up(name) for name in ("ann", "bob", "cat")]
    ann_t, bob_t, cat_t = [(await issued(api, s))["token"] for s in (ann, bob, cat)]
    for token in (ann_t, bob_t):
        assert (await api.call("PUT", "/api/v1/rooms/ops/membership", token=token)).status == 200
    posted = await api.call("POST", "/api/v1/rooms/ops/messages", {"text": "bob's"},
                            token=bob_t)
    path = f"/api/v1/rooms/ops/messages/{posted.body['message']['id']}"
    forbidden = await api.call("PATCH", path, {"text": "ann's now"}, token=ann_t)
    assert (forbidden.status, forbidden.body["code"]) == (403, "forbidden")
    reader = (await issued(api, ann, "r", ("read",)))["token"]
    scoped = await api.call("PATCH", path, {"text": "x"}, token=reader)
    assert (scoped.status, scoped.body["code"]) == (403, "insufficient_scope")
    outsider = await api.call("DELETE", path, token=cat_t)
    assert (outsider.status, outsider.body["code"]) == (403, "not_in_room")
    # ops was made by ann's join (TEST_DEFAULTS' --room-creation join): she owns it.
    assert (await api.call("DELETE", path, token=ann_t)).status == 204
    dm = await api.call("POST", "/api/v1/dms/bob/messages", {"text": "ann to bob"}, token=ann_t)
    dm_id = dm.body["message"]["id"]
    mine = await api.call("PATCH", f"/api/v1/dms/bob/messages/{dm_id}", {"text": "edited"},
                          token=ann_t)
    assert (mine.status, mine.body["message"]["message"]) == (200, "edited")
    other_pair = await api.call("PATCH", f"/api/v1/dms/ann/messages/{dm_id}", {"text": "x"},
                                token=cat_t)
    assert (other_pair.status, other_pair.body["code"]) == (404, "no_such_message")
    not_theirs = await api.call("DELETE", f"/api/v1/dms/ann/messages/{dm_id}", token=bob_t)
    assert (not_theirs.status, not_theirs.body["code"]) == (403, "forbidden")
    bad = await api.call("PUT", f"/api/v1/dms/bob/messages/{dm_id}/reactions/nope",
                         token=ann_t)
    assert (bad.status, bad.body["code"]) == (400, "invalid_field")


@pytest.mark.gen_test(timeout=60)
async def test_answers_of_the_change_routes_fit_the_document(api: Api) -> None:  # noqa: F811
    """Successes and refusals of the edit, delete and reaction routes validate against the
    OpenAPI document's schemas."""
    ann = await api.signed_up("ann")
    token = (await issued(api, ann))["token"]
    await api.call("PUT", "/api/v1/rooms/ops/membership", token=token)
    posted = await api.call("POST", "/api/v1/rooms/ops/messages", {"text": "hi"}, token=token)
    one = "/api/v1/rooms/{room}/messages/{id}"
    react = "/api/v1/rooms/{room}/messages/{id}/reactions/{emoji}"
    path = f"/api/v1/rooms/ops/messages/{posted.body['message']['id']}"
    check(await api.call("PATCH", path, {"text": "hello"}, token=token), one, "patch")
    check(await api.call("PATCH", path, {"text": ""}, token=token), one, "patch")
    check(await api.call("PUT", f"{path}/reactions/{quote('🎉')}", token=token), react, "put")
    check(await api.call("PUT", f"{path}/reactions/x", token=token), react, "put")
    check(await api.call("DELETE", f"{path}/reactions/{quote('🎉')}", token=token), react,
          "delete")
    check(await api.call("DELETE", path, token=token), one, "delete")
    check(await api.call("DELETE", path, token=token), one, "delete")
    check(await api.call("PATCH", "/api/v1/rooms/nowhere/messages/1", {"text": "x"},
                         token=token), one, "patch")
    dm_one = "/api/v1/dms/{username}/messages/{id}"
    check(await api.call("DELETE", "/api/v1/dms/ann/messages/1", token=token), dm_one,
          "delete")
