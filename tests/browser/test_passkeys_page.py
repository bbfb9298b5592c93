"""Passkeys on the page, in Chromium with a virtual authenticator (Chrome DevTools Protocol
WebAuthn domain): add one and sign in with it, create an account with one, and a clear
message when no passkey is used. The page is reached as localhost: an IP address is no RP ID."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import CDPSession, expect

from tests.browser.conftest import People, Person, ServerProcess
from tests.browser.test_accounts_page import PASSWORD, open_account, register

pytestmark = pytest.mark.browser


def at_localhost(people: People, server: ServerProcess, name: str) -> Person:
    """A person whose page is http://localhost:<port> (passkeys need a host name)."""
    person = people(name)
    person.base_url = server.base_url.replace("127.0.0.1", "localhost")
    person.open()
    return person


def authenticator(person: Person, **options: Any) -> tuple[CDPSession, str]:
    """A virtual platform authenticator (resident keys, user verification) in the person's
    browser, which answers at once as if the person touched it; (the session, its id)."""
    cdp = person.page.context.new_cdp_session(person.page)
    cdp.send("WebAuthn.enable", {"enableUI": False})
    added = cdp.send("WebAuthn.addVirtualAuthenticator", {"options": {
        "protocol": "ctap2", "transport": "internal", "hasResidentKey": True,
        "hasUserVerification": True, "isUserVerified": True,
        "automaticPresenceSimulation": True, **options}})
    return cdp, added["authenticatorId"]


def credentials(cdp: CDPSession, authenticator_id: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = cdp.send("WebAuthn.getCredentials",
                                           {"authenticatorId": authenticator_id})["credentials"]
    return found


def sign_out(person: Person) -> None:
    open_account(person.page)
    person.page.get_by_role("dialog").get_by_role("button", name="Sign out", exact=True).click()
    expect(person.page.locator("#join-title")).to_have_text("Sign in")


def test_a_passkey_added_to_an_account_signs_in_after_signing_out(
        people: People, server: ServerProcess) -> None:
    """Registered with a password, alice adds a passkey, signs out, and signs in with it
    without typing anything."""
    alice = at_localhost(people, server, "alice")
    cdp, key = authenticator(alice)
    register(alice)
    open_account(alice.page)
    dialog = alice.page.get_by_role("dialog", name="Your account")
    expect(dialog).to_contain_text("No passkeys yet")
    dialog.get_by_role("button", name="Add a passkey").click()
    expect(dialog.locator(".passkey-row")).to_have_count(1)
    expect(dialog).to_contain_text("Passkey added")
    stored = credentials(cdp, key)
    assert len(stored) == 1 and stored[0]["rpId"] == "localhost"
    assert stored[0]["isResidentCredential"]
    alice.snap("passkey-added")
    dialog.get_by_role("button", name="Close").click()

    sign_out(alice)
    alice.page.get_by_role("button", name="Sign in with a passkey").click()
    alice.composer.wait_for()
    expect(alice.page.locator(".whoami-name")).to_have_text("alice")
    assert credentials(cdp, key)[0]["signCount"] >= 1
    open_account(alice.page)
    expect(alice.page.locator(".passkey-row")).to_contain_text("last used")
    alice.assert_clean()


def test_an_account_created_with_a_passkey_signs_in_with_it_and_not_a_password(
        people: People, server: ServerProcess) -> None:
    """"Create account with a passkey" makes an account with no password, signed in at once;
    after signing out, its name and the passkey sign in again."""
    bob = at_localhost(people, server, "bob")
    cdp, key = authenticator(bob)
    page = bob.page
    page.get_by_role("button", name="Create an account").click()
    page.get_by_label("Username").fill("bob")
    page.get_by_role("button", name="Create account with a passkey").click()
    bob.composer.wait_for()
    expect(page.locator(".whoami-name")).to_have_text("bob")
    assert len(credentials(cdp, key)) == 1

    sign_out(bob)
    page.get_by_label("Username").fill("bob")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in", exact=True).click()
    expect(page.locator("#join-password-error")).to_contain_text("Wrong username or password")
    page.get_by_role("button", name="Sign in with a passkey").click()  # the name typed: bob's
    bob.composer.wait_for()
    expect(page.locator(".whoami-name")).to_have_text("bob")
    bob.assert_clean()


def test_no_passkey_for_this_site_says_so_and_keeps_the_form(
        people: People, server: ServerProcess) -> None:
    """An authenticator without a passkey for this site: the form says none was used, and the
    password sign-in is still there; the page asked without the typed name (a named ask gets
    decoy ids, for which a browser waits on a security key)."""
    carol = at_localhost(people, server, "carol")
    authenticator(carol)
    asked: list[Any] = []
    carol.page.on("request", lambda request: asked.append(request.post_data_json)
                  if request.url.endswith("/api/v1/passkey-challenges") else None)
    carol.page.get_by_label("Username").fill("carol")
    carol.page.get_by_role("button", name="Sign in with a passkey").click()
    expect(carol.page.locator("#join-error")).to_contain_text("No passkey was used")
    assert asked == [{"purpose": "signin"}]
    expect(carol.page.get_by_role("button", name="Sign in", exact=True)).to_be_enabled()
    expect(carol.page.get_by_label("Username")).to_have_value("carol")
    carol.assert_clean()


def test_a_page_reached_by_an_ip_address_says_why_passkeys_do_not_work(
        people: People, server: ServerProcess) -> None:
    """At http://127.0.0.1 (no RP ID possible) the passkey button explains what to do."""
    dave = people("dave")
    dave.open()
    dave.page.get_by_role("button", name="Sign in with a passkey").click()
    expect(dave.page.locator("#join-error")).to_contain_text("reached by a host name")
    dave.assert_clean()
