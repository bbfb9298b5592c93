"""A bot on the page: a bot's socket (its API token) shows a "bot" badge beside its name among
the people online and the room's members, and beside its messages."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import People, ServerProcess
from tests.browser.test_failover import LoopThread
from tests.browser.test_rooms_page import panel, signed_up
from tests.helpers import ChatClient
from tests.test_api_tokens_nodes import bot_with_token

pytestmark = [pytest.mark.browser, pytest.mark.subprocess]


def test_a_bot_is_badged_in_the_people_list_the_members_and_its_messages(
    people: People, server: ServerProcess,
) -> None:
    """ci-bot connects with its token and posts: alice's page marks it "bot" in the sidebar's
    people, in the members panel and on its message, and marks neither alice nor her
    message."""
    alice = signed_up(people, "alice")
    secret, _ = bot_with_token(server.db)
    loop = LoopThread()
    try:
        url = f"ws://127.0.0.1:{server.port}/ws"
        bot = loop.run(ChatClient.connect(url, Authorization=f"Bearer {secret}"))
        loop.run(bot.join("ci-bot"))
        person = alice.sidebar().locator(".conv.person", has_text="ci-bot")
        expect(person.locator(".bot-mark")).to_have_text("bot")
        expect(person).to_have_attribute("aria-label", "Direct message ci-bot, a bot")
        loop.run(bot.send({"type": "message", "room": "general", "text": "deployed **v2**"}))
        message = alice.message("deployed v2")
        expect(message.locator(".meta .bot-mark")).to_have_text("bot")
        alice.say("thanks")
        expect(alice.message("thanks").locator(".bot-mark")).to_have_count(0)
        alice.page.locator(".members-button").click()
        members = panel(alice, "Members of #general")
        expect(members.locator(".member", has_text="ci-bot").locator(".bot-mark")).to_have_text(
            "bot")
        expect(members.locator(".member", has_text="alice").locator(".bot-mark")).to_have_count(0)
        alice.snap("members")

        async def hang_up() -> None:  # on the bot's own loop, to the end of the close handshake
            bot.close()
            await bot.closed()

        loop.run(hang_up())
    finally:
        loop.close()
    alice.assert_clean()
