"""Names that look the same are one name: look-alikes of an online user are refused."""

from __future__ import annotations

from typing import Any

import pytest

from chat.people.names import name_key
from tests.helpers import ChatClient, Connect

# Look-alikes of `alice` and `josé` (both online) that a name key folds into theirs.
TAKEN = {
    "cyrillic a": "\u0430lice",
    "capital I for l": "aIice",
    "digit 1 for l": "a1ice",
    "upper case": "ALICE",
    "fullwidth": "\uff41\uff4c\uff49\uff43\uff45",
    "mathematical bold": "\U0001d41a\U0001d425\U0001d422\U0001d41c\U0001d41e",
    "stroke overlay": "alice\u0336",
    "dot above on i": "ali\u0307ce",
    "marks that compose with nothing": "alice\u0334\u0358",
    "decomposed e acute": "jose\u0301",
    "fullwidth, decomposed": "\uff4a\uff4f\uff53\uff45\u0301",
    "doubled space": "alice  ",  # trimmed: the name itself
}
# Refused whoever is online: they hide characters or say nothing, or are the server's name.
INVALID = {
    "hangul filler U+3164": "alice\u3164",
    "hangul choseong filler U+115F": "\u115falice",
    "hangul jungseong filler U+1160": "ali\u1160ce",
    "halfwidth hangul filler U+FFA0": "alice\uffa0",
    "braille blank U+2800": "alice\u2800",
    "variation selector U+FE0F": "alice\ufe0f",
    "variation selector U+E0100": "alice\U000e0100",
    "combining grapheme joiner": "ali\u034fce",
    "only combining marks": "\u0301\u0302\u0303",
    "starting with a mark": "\u0336alice",
    "one mark twice": "alice\u0301\u0301",
    "five marks on a letter": "alice\u0300\u0301\u0302\u0303\u0304",
    "server": "server",
    "Server": "Server",
    "cyrillic server": "s\u0435rver",
    "fullwidth server": "\uff53\uff45\uff52\uff56\uff45\uff52",
}
# Other names, free while alice and josé are online.
DISTINCT = ["jose", "alicé", "ali", "李雷", "Ωmega", "Алиса", "Nguyễn", "O'Brien", "alice bob",
            "servers", "bob"]


async def join(client: ChatClient, username: str, **extra: Any) -> dict[str, Any]:
    """Send a join; the welcome or the error that answers it."""
    await client.send({"type": "join", "username": username, **extra})
    while True:
        frame = await client.recv()
        assert frame is not None, "closed"
        if frame["type"] in ("welcome", "error"):
            return frame


async def online(connect: Connect) -> dict[str, dict[str, Any]]:
    """Put alice and josé online; their welcomes."""
    welcomes = {}
    for name in ("alice", "josé"):
        welcomes[name] = await (await connect()).join(name)
    return welcomes


@pytest.mark.gen_test
@pytest.mark.parametrize("name", TAKEN.values(), ids=TAKEN.keys())
async def test_a_look_alike_of_an_online_name_is_taken(
    connect: Connect, name: str,
) -> None:
    """A name that looks like an online user's is refused with username_taken."""
    await online(connect)
    error = await join(await connect(), name)
    assert error["type"] == "error", error
    assert error["code"] == "username_taken", error


@pytest.mark.gen_test
@pytest.mark.parametrize("name", INVALID.values(), ids=INVALID.keys())
async def test_invisible_stacked_and_reserved_names_are_invalid(
    connect: Connect, name: str,
) -> None:
    """Fillers, variation selectors, mark-only or stacked marks, and `server` are refused."""
    await online(connect)
    error = await join(await connect(), name)
    assert error["type"] == "error", error
    assert error["code"] == "invalid_username", error
    assert error["field"] == "username"


@pytest.mark.gen_test
async def test_a_tutorial_client_cannot_take_a_look_alike(
    connect: Connect,
) -> None:
    """The tutorial's frame is held to the same names: a look-alike is taken, a filler invalid."""
    await online(connect)
    for name, code in (("\u0430lice", "username_taken"), ("alice\u3164", "invalid_username"),
                       ("s\u0435rver", "invalid_username")):
        legacy = await connect()
        await legacy.send({"username": name, "message": "hi", "email": ""})
        error = await legacy.recv_type("error")
        assert error["code"] == code, (name, error)


@pytest.mark.gen_test
async def test_names_that_only_look_different_are_free(
    connect: Connect,
) -> None:
    """Other names, in any script, are granted while alice and josé are online."""
    await online(connect)
    for name in DISTINCT:
        welcome = await join(await connect(), name)
        assert welcome["type"] == "welcome", (name, welcome)
        assert welcome["username"] == name


@pytest.mark.gen_test
async def test_the_holder_s_token_joins_under_any_spelling_of_the_name(
    connect: Connect,
) -> None:
    """With its token, a second tab that spells the name decomposed is the same user."""
    token = (await online(connect))["josé"]["token"]
    tab = await join(await connect(), "jose\u0301", token=token)
    assert (tab["type"], tab["username"]) == ("welcome", "josé"), tab


@pytest.mark.gen_test
async def test_a_dm_to_a_look_alike_spelling_reaches_the_holder(connect: Connect) -> None:
    """A dm addressed to `ALICE` or `ａｌｉｃｅ` reaches alice, stored as to `alice`."""
    alice, bob = await connect(), await connect()
    await alice.join("alice")
    await bob.join("bob")
    for n, spelling in enumerate(("ALICE", "\uff41\uff4c\uff49\uff43\uff45")):
        await bob.send({"type": "dm", "to": spelling, "text": f"hi {n}", "cid": f"d{n}"})
        got = await alice.recv_type("dm")
        assert (got["from"], got["to"], got["message"]) == ("bob", "alice", f"hi {n}")
    await bob.send({"type": "history", "with": "alice"})
    history = await bob.recv_type("history")
    assert [m["message"] for m in history["messages"]] == ["hi 0", "hi 1"]


@pytest.mark.gen_test
async def test_a_user_s_own_notices_skip_it_whatever_the_spelling(connect: Connect) -> None:
    """A member with a wide name is not sent its own typing notice; the others are."""
    wide, other = await connect(), await connect()
    await wide.join("\uff57\uff49\uff44\uff45")
    await other.join("other")
    await wide.recv_type("join")
    await wide.send({"type": "typing", "room": "general"})
    notice = await other.recv_type("typing")
    assert notice["username"] == "\uff57\uff49\uff44\uff45"
    await wide.nothing()


def test_the_name_key_folds_look_alikes_and_keeps_others_apart() -> None:
    """name_key: equal for the look-alikes above, different for the distinct names."""
    for name in TAKEN.values():
        assert name_key(name.strip()) in (name_key("alice"), name_key("josé")), name
    keys = [name_key(name) for name in ["alice", "josé", *DISTINCT]]
    assert len(set(keys)) == len(keys)
