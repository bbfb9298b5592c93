"""Join and leave notices only for real joins and leaves: join-grace and busy rooms."""

from __future__ import annotations

import asyncio

import pytest

from tests.helpers import Connect

GRACE_S = 1.0


@pytest.mark.settings(join_grace=GRACE_S)
@pytest.mark.gen_test(timeout=30)
async def test_a_user_back_within_the_grace_makes_no_notice(connect: Connect) -> None:
    """ann's tab closes and a new one joins within join-grace: bob sees neither leave nor join;
    presence still lists her meanwhile; a `leave` frame is a real leave, at once."""
    bob = await connect()
    await bob.join("bob", "dev")
    ann = await connect()
    welcome = await ann.join("ann", "dev")
    assert (await bob.recv_type("join"))["username"] == "ann"
    ann.close()
    again = await connect()
    await again.join("ann", "dev")  # a guest's name is free again once its last tab closed
    watcher = await connect()
    await watcher.join("watcher", "dev")
    await bob.recv_type("join")  # the watcher's
    await asyncio.sleep(GRACE_S + 0.3)
    await bob.nothing()  # no leave of ann's, no join of hers
    await again.send({"type": "leave", "room": "dev"})
    leave = await bob.recv_type("leave")
    assert (leave["username"], leave["count"]) == ("ann", 2)
    assert welcome["username"] == "ann"


@pytest.mark.settings(join_grace=GRACE_S)
@pytest.mark.gen_test(timeout=30)
async def test_a_user_not_back_within_the_grace_leaves_after_it(connect: Connect) -> None:
    """Closing the last tab sends the leave once join-grace has passed, not before."""
    bob = await connect()
    await bob.join("bob", "dev")
    ann = await connect()
    await ann.join("ann", "dev")
    await bob.recv_type("join")
    ann.close()
    await bob.nothing(GRACE_S / 2)
    leave = await bob.recv_type("leave", timeout=GRACE_S + 2)
    assert (leave["username"], leave["count"]) == ("ann", 1)


@pytest.mark.settings(notices_max_members=2)
@pytest.mark.gen_test(timeout=30)
async def test_a_busy_room_sends_no_join_or_leave_notices(connect: Connect) -> None:
    """Above notices-max-members, joins and leaves make no notice; presence still counts."""
    bob = await connect()
    await bob.join("bob", "dev")
    ann = await connect()
    await ann.join("ann", "dev")
    assert (await bob.recv_type("join"))["count"] == 2  # at the limit: still told
    cid = await connect()
    await cid.send({"type": "join", "username": "cid", "room": "dev"})
    assert (await cid.recv_type("presence"))["count"] == 3
    await bob.nothing()  # 3 members: above the limit
    cid.close()
    assert (await bob.recv_type("leave"))["count"] == 2  # back at the limit
