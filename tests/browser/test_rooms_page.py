"""The page's rooms with owners (issue 15): the directory, private rooms and invitations, the
channel header, the member list's moderation menu, and an account's rooms coming back."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Locator, expect

from tests.browser.conftest import PHONE, People, Person, box
from tests.browser.test_accounts_page import open_signed_out, register, sign_in
from tests.browser.test_layout import no_sideways_scroll

pytestmark = pytest.mark.browser


def signed_up(people: People, name: str) -> Person:
    """A person with a new account, on the chat page."""
    person = people(name)
    open_signed_out(person)
    register(person)
    return person


def panel(person: Person, title: str) -> Locator:
    return person.page.get_by_role("dialog", name=title)


def create_room(person: Person, name: str, topic: str = "", private: bool = False) -> None:
    """Creates a room with the page's "Create room" form; the page then shows it."""
    person.sidebar().get_by_role("button", name="Create room").click()
    form = panel(person, "Create a room")
    form.get_by_label("Room name").fill(name)
    if topic:
        form.get_by_label("Topic (optional)").fill(topic)
    form.get_by_label("Who can join").select_option("private" if private else "public")
    form.get_by_role("button", name="Create").click()
    expect(person.page.locator(".channel-name")).to_contain_text("#" + name)
    expect(person.room_button(name)).to_have_count(1)  # in the sidebar (a phone's is shut)


def browse(person: Person, prefix: str = "") -> Locator:
    """Opens the room directory (searching `prefix`): the panel."""
    person.sidebar().get_by_role("button", name="Browse rooms").click()
    directory = panel(person, "Room directory")
    if prefix:
        directory.get_by_label("Search rooms").fill(prefix)
    return directory


def test_the_directory_lists_a_public_room_and_joining_it_works(people: People) -> None:
    """A public room made in the page is in another's directory, with its topic, and joins."""
    alice = signed_up(people, "alice")
    create_room(alice, "books", topic="Reading club")
    expect(alice.page.locator(".channel-topic")).to_have_text("Reading club")

    bob = signed_up(people, "bob")
    directory = browse(bob)
    row = directory.locator(".directory-room", has_text="#books")
    expect(row).to_contain_text("Reading club")
    expect(row).to_contain_text("1 member")
    directory.get_by_label("Search rooms").fill("zz")
    expect(directory.locator(".directory-room")).to_have_count(0)
    expect(directory).to_contain_text("No public rooms found.")
    directory.get_by_label("Search rooms").fill("bo")
    directory.get_by_role("button", name="Join #books").click()

    expect(bob.room_button("books")).to_be_visible()
    expect(bob.page.locator(".channel-topic")).to_have_text("Reading club")
    expect(bob.page.locator(".members-button")).to_have_text("2 members")
    bob.say("hello books")
    expect(alice.message("hello books")).to_be_visible()

    # The owner changes the topic from the header's settings; the member sees it.
    alice.page.get_by_role("button", name="Settings of #books").click()
    settings = panel(alice, "Settings of #books")
    settings.get_by_label("Topic").fill("Books and more")
    settings.get_by_role("button", name="Save").click()
    expect(settings.get_by_role("status")).to_have_text("Saved.")
    expect(bob.page.locator(".channel-topic")).to_have_text("Books and more")
    expect(bob.page.locator(".notice", has_text="alice changed the settings of #books")
           ).to_be_visible()
    alice.assert_clean()
    bob.assert_clean()


def test_a_private_room_is_hidden_from_others_until_they_are_invited(people: People) -> None:
    """A private room is not in another's directory; invited, that person joins it."""
    alice = signed_up(people, "alice")
    create_room(alice, "secret", private=True)
    expect(alice.page.locator(".private-mark")).to_have_text("private")
    alice.say("the plan")

    bob = signed_up(people, "bob")
    directory = browse(bob, "sec")
    expect(directory).to_contain_text("No public rooms found.")
    expect(directory.locator(".directory-room")).to_have_count(0)
    directory.get_by_role("button", name="Close").click()

    alice.page.get_by_role("button", name="Invite").click()
    form = panel(alice, "Invite to #secret")
    form.get_by_label("Username to invite").fill("nobody")
    form.get_by_role("button", name="Invite").click()
    expect(form.get_by_role("alert")).to_contain_text("nobody")  # the server's no_such_user
    form.get_by_label("Username to invite").fill("bob")
    form.get_by_role("button", name="Invite").click()
    expect(form.get_by_role("status")).to_have_text("bob was invited to #secret.")

    invitations = bob.sidebar().get_by_role("list", name="Invitations")
    expect(invitations).to_contain_text("alice invited you to #secret")
    invitations.get_by_role("button", name="Join #secret").click()
    expect(bob.room_button("secret")).to_be_visible()
    expect(bob.page.locator(".private-mark")).to_have_text("private")
    expect(bob.message("the plan")).to_be_visible()
    expect(bob.page.get_by_role("list", name="Invitations")).to_have_count(0)
    alice.assert_clean()
    bob.assert_clean()


def test_the_moderation_menu_kicks_a_member_and_is_absent_for_a_plain_member(
        people: People) -> None:
    """The owner's member menu kicks; the member's page leaves the room and says why."""
    alice = signed_up(people, "alice")
    create_room(alice, "club")
    bob = signed_up(people, "bob")
    browse(bob, "club").get_by_role("button", name="Join #club").click()
    expect(bob.room_button("club")).to_be_visible()
    bob.say("spam spam")
    expect(alice.message("spam spam")).to_be_visible()

    # A plain member: no settings, no menu, no "Remove".
    expect(bob.page.get_by_role("button", name="Settings of #club")).to_have_count(0)
    bob.page.locator(".members-button").click()
    members = panel(bob, "Members of #club")
    expect(members.locator(".member", has_text="alice")).to_contain_text("owner")
    expect(members.locator(".member-menu")).to_have_count(0)
    expect(bob.page.locator(".remove-message")).to_have_count(0)

    # The owner removes bob's message: it goes from bob's page too.
    alice.message("spam spam").get_by_role("button", name="Remove the message of bob").click()
    expect(bob.message("spam spam")).to_have_count(0)
    expect(alice.message("spam spam")).to_have_count(0)

    alice.page.locator(".members-button").click()
    members = panel(alice, "Members of #club")
    expect(members.locator(".member", has_text="alice")).to_contain_text("owner")
    bob_row = members.locator(".member", has_text="bob")
    bob_row.locator("summary", has_text="⋯").click()
    bob_row.get_by_role("button", name="Kick").click()
    expect(members.get_by_role("status")).to_have_text("bob was removed from #club.")

    expect(bob.room_button("club")).to_have_count(0)
    expect(bob.page.locator(".rooms-notice")).to_contain_text("alice removed you from #club.")
    expect(members.locator(".member", has_text="bob")).to_have_count(0)
    alice.assert_clean()
    bob.assert_clean()


def test_an_accounts_rooms_come_back_on_reload_and_on_another_device(people: People) -> None:
    """A reload and a second device join the account's rooms; leaving on one leaves both."""
    alice = signed_up(people, "alice")
    alice.join_room("books")
    expect(alice.room_button("books")).to_be_visible()
    alice.open_room("general")

    alice.page.reload()
    alice.composer.wait_for()
    expect(alice.room_button("books")).to_be_visible()

    laptop = people("alice-laptop")
    open_signed_out(laptop)
    sign_in(laptop, "alice")
    expect(laptop.room_button("books")).to_be_visible()

    alice.sidebar().get_by_role("button", name="Leave #books").click()
    expect(alice.room_button("books")).to_have_count(0)
    expect(laptop.room_button("books")).to_have_count(0)
    expect(laptop.page.locator(".rooms-notice")).to_contain_text(
        re.compile(r"You left #books on another tab or device"))
    alice.assert_clean()
    laptop.assert_clean()


def test_a_mute_and_a_room_made_private_reach_the_members_pages(people: People) -> None:
    """A mute from the menu refuses the member's posts; made private, a guest's page leaves."""
    alice = signed_up(people, "alice")
    create_room(alice, "club")
    bob = signed_up(people, "bob")
    browse(bob, "club").get_by_role("button", name="Join #club").click()
    carol = people("carol")
    carol.open()
    carol.join()
    carol.join_room("club")
    expect(carol.room_button("club")).to_be_visible()

    alice.page.locator(".members-button").click()
    bob_row = panel(alice, "Members of #club").locator(".member", has_text="bob")
    expect(bob_row).to_be_visible()
    bob_row.locator("summary").click()
    bob_row.get_by_label(re.compile("^Minutes")).fill("5")
    bob_row.get_by_role("button", name="Mute", exact=True).click()
    expect(panel(alice, "Members of #club").get_by_role("status")).to_contain_text(
        "bob is muted in #club until")
    expect(bob.page.locator(".notice", has_text="alice muted you in #club until")).to_be_visible()
    bob.say("can I speak")
    expect(bob.page.locator(".message.failed")).to_contain_text("muted")

    alice.page.get_by_role("button", name="Settings of #club").click()
    settings = panel(alice, "Settings of #club")
    settings.get_by_label("Who can join").select_option("private")
    settings.get_by_role("button", name="Save").click()
    expect(settings.get_by_role("status")).to_have_text("Saved.")
    expect(carol.room_button("club")).to_have_count(0)
    expect(carol.page.locator(".rooms-notice")).to_contain_text("#club is now private")
    expect(bob.room_button("club")).to_be_visible()  # an account's membership stays
    expect(bob.page.locator(".private-mark")).to_have_text("private")
    alice.assert_clean()
    bob.assert_clean()
    carol.assert_clean()


def test_the_header_and_the_panels_fit_a_phone(people: People) -> None:
    """On a 360 px screen the room's header and its panels fit, with nothing scrolled sideways."""
    alice = people("alice", viewport=PHONE)
    open_signed_out(alice)
    register(alice)
    create_room(alice, "a-long-room-name.with-parts", topic="A topic long enough to be cut " * 4)
    header = alice.page.locator(".channel-header")
    assert box(header)["width"] <= PHONE["width"]
    no_sideways_scroll(alice)
    alice.snap("header")
    alice.page.locator(".members-button").click()
    members = panel(alice, "Members of #a-long-room-name.with-parts")
    expect(members.locator(".member", has_text="alice")).to_contain_text("owner")
    rect = box(members)
    assert rect["x"] >= 0 and rect["x"] + rect["width"] <= PHONE["width"], rect
    no_sideways_scroll(alice)
    alice.assert_clean()


def test_a_ban_from_the_menu_keeps_the_member_out_and_the_page_says_why(
        people: People) -> None:
    """Banned from the member menu, a member leaves the room; joining again is refused."""
    alice = signed_up(people, "alice")
    create_room(alice, "club")
    bob = signed_up(people, "bob")
    browse(bob, "club").get_by_role("button", name="Join #club").click()
    expect(bob.room_button("club")).to_be_visible()

    alice.page.locator(".members-button").click()
    bob_row = panel(alice, "Members of #club").locator(".member", has_text="bob")
    bob_row.locator("summary").click()
    bob_row.get_by_label(re.compile("^Minutes")).fill("60")
    bob_row.get_by_role("button", name="Ban", exact=True).click()
    expect(panel(alice, "Members of #club").get_by_role("status")).to_contain_text(
        "bob was banned from #club until")

    expect(bob.room_button("club")).to_have_count(0)
    expect(bob.page.locator(".rooms-notice")).to_contain_text("alice banned you from #club until")
    bob.join_room("club")
    expect(bob.page.locator("#room-name-error")).to_contain_text("banned")
    expect(bob.room_button("club")).to_have_count(0)
    alice.assert_clean()
    bob.assert_clean()


@pytest.mark.server_args("--room-creation=explicit")
def test_by_default_only_create_room_makes_a_room(people: People) -> None:
    """With --room-creation explicit (the default), the form joins rooms and says where rooms
    are made; "Create room" makes one, which then joins by name."""
    alice = signed_up(people, "alice")
    side = alice.sidebar()
    expect(side.get_by_label("Join or create a room")).to_have_count(0)
    side.get_by_label("Join a room").fill("garden")
    side.get_by_role("button", name="Join", exact=True).click()
    expect(side.get_by_role("alert")).to_contain_text("there is no room 'garden'")
    expect(side.get_by_role("alert")).to_contain_text('use "Create room"')
    expect(alice.room_button("garden")).to_have_count(0)
    create_room(alice, "garden")
    bob = signed_up(people, "bob")
    bob.sidebar().get_by_label("Join a room").fill("garden")
    bob.sidebar().get_by_role("button", name="Join", exact=True).click()
    expect(bob.room_button("garden")).to_be_visible()
