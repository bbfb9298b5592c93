"""The page with accounts (issue 14): sign in, create an account, stay signed in, sign out,
the account's sessions, the API's refusals shown beside their fields, and guests beside it all."""

from __future__ import annotations

import re
import subprocess
import sys
import urllib.error
import urllib.request
from typing import TYPE_CHECKING

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import REPO, People, Person, ServerProcess
from tests.serverproc import child_env

if TYPE_CHECKING:
    from playwright.sync_api import ConsoleMessage, Page

pytestmark = pytest.mark.browser

PASSWORD = "correct horse battery"  # long enough, and on no list of common passwords
ENDED = re.compile(r"Your session has ended")


def create_account(server: ServerProcess, name: str, password: str = PASSWORD) -> None:
    """Makes an account with the admin command, against the running server's database."""
    subprocess.run(
        [sys.executable, str(REPO / "chat_server.py"), "accounts", "create", name,
         f"--db={server.db}", "--password-stdin"],
        input=password + "\n", text=True, check=True, capture_output=True, cwd=REPO,
        env=child_env(), timeout=60)


def admin(server: ServerProcess, *args: str) -> str:
    """`chat_server.py accounts ARGS --db <the server's>`: what it printed."""
    done = subprocess.run(
        [sys.executable, str(REPO / "chat_server.py"), "accounts", *args, f"--db={server.db}"],
        text=True, check=True, capture_output=True, cwd=REPO, env=child_env(), timeout=60)
    return done.stdout


def fill_entry(page: Page, mode: str, username: str, password: str) -> None:
    """Switches the entry form to `mode` (its heading), fills it in and sends it."""
    if page.locator("#join-title").inner_text() != mode:
        page.get_by_role("button", name="Create an account" if mode == "Create an account"
                         else "Sign in with an account").click()
    expect(page.locator("#join-title")).to_have_text(mode)
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    submit = "Create account" if mode == "Create an account" else "Sign in"
    page.get_by_role("button", name=submit, exact=True).click()


def sign_in(person: Person, username: str | None = None, password: str = PASSWORD) -> None:
    fill_entry(person.page, "Sign in", username or person.name, password)
    person.composer.wait_for()


def register(person: Person, username: str | None = None, password: str = PASSWORD) -> None:
    fill_entry(person.page, "Create an account", username or person.name, password)
    person.composer.wait_for()


def session_cookie(person: Person) -> str:
    cookies = [c for c in person.context.cookies() if c["name"] == "chat_session"]
    assert len(cookies) == 1, cookies
    assert cookies[0]["httpOnly"], cookies  # the page's script can never read it
    return cookies[0]["value"]


def me_status(server: ServerProcess, token: str) -> int:
    """What GET /api/v1/me answers a request carrying `token` as the session cookie."""
    request = urllib.request.Request(server.base_url + "/api/v1/me",
                                     headers={"Cookie": f"chat_session={token}"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return int(response.status)
    except urllib.error.HTTPError as error:
        return int(error.code)


def open_signed_out(person: Person) -> None:
    """Loads the page, which shows the sign-in form (the default way in)."""
    person.open()
    expect(person.page.locator("#join-title")).to_have_text("Sign in")


def open_account(page: Page) -> None:
    page.locator("button.whoami").click()
    expect(page.get_by_role("dialog", name="Your account")).to_be_visible()


def test_an_account_stays_signed_in_across_reloads_and_tabs_until_it_signs_out(
        people: People, server: ServerProcess) -> None:
    """Registered, the page stays signed in on reload and in a second tab, until signed out."""
    alice, bob = people("alice"), people("bob")
    open_signed_out(alice)
    register(alice)
    expect(alice.page.locator(".whoami-name")).to_have_text("alice")
    assert alice.sent[-1][-1]["type"] == "join"
    token = session_cookie(alice)
    assert me_status(server, token) == 200

    alice.page.reload()
    alice.composer.wait_for()  # straight to the chat: no form on the way
    expect(alice.page.locator(".join-form")).to_have_count(0)
    expect(alice.page.locator(".whoami-name")).to_have_text("alice")

    second = alice.context.new_page()  # same browser, same cookie
    tab_errors: list[str] = []

    def tab_console(message: ConsoleMessage) -> None:
        if message.type == "error" and "/api/v1/" not in message.location.get("url", ""):
            tab_errors.append(message.text)

    second.on("console", tab_console)
    second.goto(server.base_url + "/")
    second.locator("#composer-text").wait_for()
    expect(second.locator(".whoami-name")).to_have_text("alice")

    bob.open()
    bob.join()
    bob.say("hello both tabs")
    expect(alice.message("hello both tabs")).to_be_visible()
    expect(second.locator(".message", has_text="hello both tabs")).to_be_visible()
    second.locator("#composer-text").fill("from the second tab")
    second.locator("#composer-text").press("Enter")
    for page in (alice.page, bob.page):
        expect(page.locator(".message:not(.pending)", has_text="from the second tab")) \
            .to_be_visible()
    # The same person, not two: bob's list shows alice once.
    expect(bob.sidebar().locator(".people li", has_text="alice")).to_have_count(1)

    # By keyboard: the name's button opens the dialog, Escape closes it, the focus comes back.
    whoami = alice.page.locator("button.whoami")
    whoami.focus()
    alice.page.keyboard.press("Enter")
    dialog = alice.page.get_by_role("dialog", name="Your account")
    expect(dialog).to_be_visible()
    alice.page.keyboard.press("Escape")
    expect(dialog).to_have_count(0)
    expect(whoami).to_be_focused()
    open_account(alice.page)
    alice.snap("account-dialog")
    alice.page.get_by_role("dialog").get_by_role("button", name="Sign out", exact=True).click()
    expect(alice.page.locator("#join-title")).to_have_text("Sign in")
    expect(alice.page.locator(".whoami")).to_have_count(0)
    # The other tab shared the session: it is back at the sign-in form too.
    expect(second.locator("#join-title")).to_have_text("Sign in")
    expect(second.locator(".entry-notice")).to_contain_text(ENDED)
    assert me_status(server, token) == 401
    assert [c for c in alice.context.cookies() if c["name"] == "chat_session"] == []
    assert tab_errors == []
    alice.assert_clean()
    bob.assert_clean()


def test_a_wrong_password_says_so_beside_the_password(
        people: People, server: ServerProcess) -> None:
    """A wrong password, or an unknown name, is refused with the same message by the field."""
    create_account(server, "alice")
    mallory = people("mallory")
    open_signed_out(mallory)
    page = mallory.page
    for name in ("alice", "nobody-here"):
        fill_entry(page, "Sign in", name, "not the password")
        error = page.locator("#join-password-error")
        expect(error).to_have_text("Wrong username or password.")
        expect(page.get_by_label("Password")).to_have_attribute("aria-invalid", "true")
    mallory.snap("wrong-password")
    assert not any(c["name"] == "chat_session" for c in mallory.context.cookies())
    sign_in(mallory, "alice")  # the right one still works
    mallory.assert_clean()


@pytest.mark.server_args("--login-throttle-after=1", "--login-throttle-first=30",
                         "--login-throttle-max=60")
def test_a_throttled_sign_in_says_when_to_try_again(
        people: People, server: ServerProcess) -> None:
    """Past the throttle, the form says how many seconds to wait, counting down."""
    create_account(server, "alice")
    mallory = people("mallory")
    open_signed_out(mallory)
    page = mallory.page
    fill_entry(page, "Sign in", "alice", "guess number one")
    expect(page.locator("#join-password-error")).to_be_visible()
    fill_entry(page, "Sign in", "alice", "guess number two")
    error = page.locator("#join-error")
    expect(error).to_have_text(re.compile(r"^Too many attempts\. Try again in \d+ s\.$"))
    first = int(re.findall(r"\d+", error.inner_text())[0])
    assert 0 < first <= 30, first
    expect(error).not_to_have_text(f"Too many attempts. Try again in {first} s.")  # it counts
    # ...on the screen; a screen reader is told the wait once (the alert does not change).
    expect(page.get_by_role("alert")).to_have_text(
        re.compile(r"^Too many attempts\. Try again in \d+ s\.$"))
    mallory.snap("throttled")
    mallory.assert_clean()


@pytest.mark.server_args("--registration=closed")
def test_closed_registration_offers_no_way_to_create_an_account(people: People) -> None:
    """With registration closed, the form offers signing in and guests, not a new account."""
    carol = people("carol")
    open_signed_out(carol)
    page = carol.page
    expect(page.locator("#join-title")).to_have_text("Sign in")
    expect(page.get_by_role("button", name="Continue as a guest")).to_be_visible()
    expect(page.get_by_role("button", name="Create an account")).to_have_count(0)
    carol.assert_clean()


@pytest.mark.server_args("--registration=invite")
def test_an_invite_code_is_asked_for_when_required(
        people: People, server: ServerProcess) -> None:
    """With invites, the form asks for the code, refuses a wrong one and takes a good one."""
    create_account(server, "boss")  # the first account: an admin, who makes invites
    code = admin(server, "invite").strip()
    carol = people("carol")
    open_signed_out(carol)
    page = carol.page
    page.get_by_role("button", name="Create an account").click()
    invite = page.get_by_label("Invite code")
    expect(invite).to_be_visible()  # asked for from the start: the page knows the setting
    fill_entry(page, "Create an account", "carol", PASSWORD)
    expect(invite).to_be_focused()
    expect(page.locator("#join-invite-error")).to_contain_text("invite code")
    invite.fill("not-a-code")
    page.get_by_role("button", name="Create account", exact=True).click()
    expect(page.locator("#join-invite-error")).to_contain_text("not valid")
    invite.fill(code)
    page.get_by_role("button", name="Create account", exact=True).click()
    carol.composer.wait_for()
    expect(page.locator(".whoami-name")).to_have_text("carol")
    carol.assert_clean()


def test_a_session_ended_elsewhere_returns_to_sign_in_keeping_the_draft(
        people: People, server: ServerProcess) -> None:
    """Signed out from another device's session list: sign-in again, and the draft is back."""
    create_account(server, "alice")
    laptop, phone = people("alice"), people("alice-phone")
    open_signed_out(laptop)
    sign_in(laptop)
    open_signed_out(phone)
    sign_in(phone, "alice")
    laptop.composer.fill("half a thought, not sent yet")

    open_account(phone.page)
    rows = phone.page.locator(".sessions .session")
    expect(rows).to_have_count(2)
    expect(rows.filter(has_text="this browser")).to_have_count(1)
    phone.snap("sessions")
    rows.filter(has_not_text="this browser").get_by_role("button", name=re.compile(
        "^Sign out")).click()
    expect(rows).to_have_count(1)

    page = laptop.page
    expect(page.locator("#join-title")).to_have_text("Sign in")
    expect(page.locator(".entry-notice")).to_contain_text(ENDED)
    expect(page.get_by_label("Username")).to_have_value("alice")
    laptop.snap("session-ended")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in", exact=True).click()
    expect(laptop.composer).to_have_value("half a thought, not sent yet")
    laptop.composer.press("Enter")
    expect(phone.message("half a thought, not sent yet")).to_be_visible()
    laptop.assert_clean()
    phone.assert_clean()


def test_disabling_an_account_from_the_command_line_signs_the_page_out(
        people: People, server: ServerProcess) -> None:
    """An admin disabling the account closes its page's socket: back to sign-in, told why."""
    create_account(server, "boss")
    create_account(server, "alice")
    alice = people("alice")
    open_signed_out(alice)
    sign_in(alice)
    alice.composer.fill("typed before the ban")
    admin(server, "disable", "alice")
    expect(alice.page.locator(".entry-notice")).to_contain_text(ENDED)
    expect(alice.page.get_by_label("Username")).to_have_value("alice")
    alice.page.get_by_label("Password").fill(PASSWORD)
    alice.page.get_by_role("button", name="Sign in", exact=True).click()
    expect(alice.page.locator("#join-error")).to_contain_text("disabled")
    alice.assert_clean()


def test_guests_join_beside_accounts_but_not_as_them(
        people: People, server: ServerProcess) -> None:
    """A guest joins by name alone, marked as a guest, never under an account's name."""
    create_account(server, "alice")  # offline: her name is still hers
    alice, guest = people("alice"), people("guest")
    guest.open()
    guest.as_guest()
    page = guest.page
    expect(page.locator("#join-title")).to_have_text("Join as a guest")
    expect(page.get_by_label("Password")).to_have_count(0)
    page.get_by_label("Username").fill("Alice")
    page.get_by_role("button", name="Join", exact=True).click()
    expect(page.locator("#join-username-error")).to_be_visible()
    expect(guest.composer).to_have_count(0)
    guest.join(username="visitor")
    expect(page.locator(".whoami .guest-mark")).to_be_visible()
    open_signed_out(alice)
    sign_in(alice)
    guest.say("hello from a guest")
    expect(alice.message("hello from a guest").locator(".guest-mark")).to_be_visible()
    people_online = alice.sidebar().locator(".people li")
    expect(people_online.filter(has_text="visitor").locator(".guest-mark")).to_be_visible()
    expect(people_online.filter(has_text="alice").locator(".guest-mark")).to_have_count(0)
    alice.assert_clean()
    guest.assert_clean()


@pytest.mark.server_args("--guests", "off")
def test_without_guests_the_form_asks_to_sign_in(people: People) -> None:
    """With --guests off, the form offers only the account ways, from the start."""
    visitor = people("visitor")
    open_signed_out(visitor)
    page = visitor.page
    expect(page.locator("#join-title")).to_have_text("Sign in")
    expect(page.get_by_role("button", name="Create an account")).to_be_visible()
    expect(page.get_by_role("button", name="Continue as a guest")).to_have_count(0)
    expect(visitor.composer).to_have_count(0)
    visitor.assert_clean()


def test_a_tab_at_the_sign_in_form_follows_another_that_signs_in(
        people: People, server: ServerProcess) -> None:
    """A second tab left at the sign-in form goes into the chat when the first one signs in."""
    create_account(server, "alice")
    alice = people("alice")
    open_signed_out(alice)
    second = alice.context.new_page()
    second.goto(server.base_url + "/")
    expect(second.locator("#join-title")).to_have_text("Sign in")
    sign_in(alice)
    second.locator("#composer-text").wait_for()
    expect(second.locator(".whoami-name")).to_have_text("alice")
    alice.assert_clean()
