"""A big room's member list and a churning room's notices, as the page shows them."""

from __future__ import annotations

import re
from typing import Any

import pytest
from playwright.sync_api import expect

# Sockets the crowd's page opens, joins and closes (it is a chat page too, so same origin). Each
# `join` resolves once its history arrives; `say` once the message comes back; `close` at once.
CROWD_JS = """
window.crowd = {
  url: 'ws://' + location.host + '/ws',
  join(name) {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(this.url);
      ws.onopen = () => ws.send(JSON.stringify({ type: 'join', username: name }));
      ws.onmessage = (e) => {
        const f = JSON.parse(e.data);
        if (f.type === 'history') resolve(ws);
        if (f.type === 'error') reject(new Error(f.reason));
      };
    });
  },
  say(ws, text) {
    return new Promise((resolve) => {
      ws.onmessage = (e) => JSON.parse(e.data).message === text && resolve();
      ws.send(JSON.stringify({ type: 'message', text }));
    });
  },
};
"""


def crowd(people: Any) -> Any:
    """A page that opens extra sockets; one address stands in for many (the default limit of
    100 connections per address is not reached)."""
    person = people("crowd")
    person.open()
    person.page.evaluate(CROWD_JS)
    return person.page


# Notices unfolded: the crowd's joins are announced before alice joins. Folded (the default
# second), a page that opens fast joined before they were sent and listed them from the notices.
@pytest.mark.server_args("--presence-max-members=5", "--notice-interval=0")
def test_a_big_room_shows_its_count_and_loads_the_rest(people: Any) -> None:
    """Past presence-max-members the list shows the count and loads the rest on request."""
    crowd(people).evaluate(
        "Promise.all(Array.from({length: 12}, (_, i) => crowd.join('m' + (i + 10))))")
    alice = people("alice")
    alice.open()
    alice.join()
    online = alice.page.locator("#sidebar .people")
    expect(online.locator("h2")).to_have_text("Online in #general (13)")
    expect(online.locator("li")).to_have_count(5)
    more = online.get_by_role("button", name="Show more (8 more)")
    more.click()
    expect(online.locator("li")).to_have_count(10)
    online.get_by_role("button", name=re.compile(r"^Show more")).click()
    expect(online.locator("li")).to_have_count(13)
    expect(online.get_by_role("button", name=re.compile(r"^Show more"))).to_have_count(0)
    alice.assert_clean()


@pytest.mark.server_args("--notice-interval=0")  # every notice reaches the page, unfolded
def test_churn_folds_into_few_notice_lines_and_old_ones_go(people: Any) -> None:
    """Joins in a row make one line; between messages, only the latest lines are kept."""
    alice = people("alice")
    alice.open()
    alice.join()
    page = crowd(people)
    page.evaluate("Promise.all(['f1', 'f2', 'f3', 'f4', 'f5'].map((n) => crowd.join(n)))")
    notices = alice.page.locator(".message-list .notice > span:first-child")  # not the time
    expect(notices).to_have_text([re.compile(r"and 3 others joined #general$")])
    page.evaluate("""async () => {
      for (let i = 0; i < 60; i++) {
        const ws = await crowd.join('c' + i);
        await crowd.say(ws, 'message ' + i);
        ws.close();
      }
    }""")
    expect(alice.message("message 59")).to_be_visible()
    expect(notices.last).to_have_text("c59 left #general")
    cap = alice.page.evaluate("Chat.MAX_NOTICE_LINES")
    expect(notices).to_have_count(cap)  # 62 lines were made (125 before folding)
    alice.assert_clean()
