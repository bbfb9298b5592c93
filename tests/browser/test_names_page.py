"""The page of a guest whose name is registered meanwhile: back to the join form, told why."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import People, ServerProcess
from tests.browser.test_accounts_page import create_account

pytestmark = pytest.mark.browser


def test_a_guest_whose_name_is_registered_is_sent_back_to_the_join_form(
        people: People, server: ServerProcess) -> None:
    """The admin command registers a guest's name while it chats: its page closes (4004),
    and it lands on the join form with the reason beside the name."""
    guest = people("carol")
    guest.open()
    guest.join()
    create_account(server, "Carol")
    expect(guest.composer).to_have_count(0, timeout=15_000)
    expect(guest.page.locator("#join-username-error")).to_contain_text("account")
    guest.assert_clean()
