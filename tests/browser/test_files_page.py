"""The page's files (issue 18): drag and drop and paste upload with a progress bar, cancel,
images inline with a lightbox, chips for the rest; user HTML and SVG never run as pages."""

from __future__ import annotations

import base64
import contextlib
import io

import pytest
from PIL import Image
from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import Route, expect

from tests.browser.conftest import People, Person, ServerProcess
from tests.browser.test_rooms_page import signed_up

pytestmark = pytest.mark.browser

# Records, from before the upload starts, whether a progress bar was ever drawn (a small file
# uploads in milliseconds: a wait for it could miss it).
WATCH_PROGRESS = """() => {
  window.sawProgress = false;
  new MutationObserver(() => {
    if (document.querySelector('.upload-chip progress')) window.sawProgress = true;
  }).observe(document.body, { childList: true, subtree: true });
}"""
# Hands `files` ([{name, type, b64}]) to the composer as a drop, or as a paste.
DELIVER = """([how, files]) => {
  const dt = new DataTransfer();
  for (const f of files) {
    const bytes = Uint8Array.from(atob(f.b64), (c) => c.charCodeAt(0));
    dt.items.add(new File([bytes], f.name, { type: f.type }));
  }
  if (how === 'drop') {
    const form = document.querySelector('form.composer');
    form.dispatchEvent(new DragEvent('dragover', { dataTransfer: dt, bubbles: true,
                                                   cancelable: true }));
    form.dispatchEvent(new DragEvent('drop', { dataTransfer: dt, bubbles: true,
                                               cancelable: true }));
  } else {
    document.querySelector('#composer-text').dispatchEvent(
      new ClipboardEvent('paste', { clipboardData: dt, bubbles: true, cancelable: true }));
  }
}"""


def png(size: tuple[int, int], colour: str = "teal") -> str:
    out = io.BytesIO()
    Image.new("RGB", size, colour).save(out, "PNG")
    return base64.b64encode(out.getvalue()).decode()


def deliver(person: Person, how: str, *files: dict[str, str]) -> None:
    person.page.evaluate(DELIVER, [how, list(files)])


def test_drop_and_paste_upload_with_progress_then_send_images_and_chips(
        people: People) -> None:
    """A dropped image and a pasted text file upload (a progress bar shows), then go out in one
    message: the image inline for another account, opening in a lightbox; the file a chip."""
    alice = signed_up(people, "alice")
    bob = signed_up(people, "bob")
    alice.page.evaluate(WATCH_PROGRESS)
    deliver(alice, "drop", {"name": "view.png", "type": "image/png", "b64": png((800, 600))})
    deliver(alice, "paste", {"name": "notes.txt", "type": "text/plain",
                             "b64": base64.b64encode(b"meeting notes\n").decode()})
    chips = alice.page.locator(".upload-chip.done")
    expect(chips).to_have_count(2)
    assert alice.page.evaluate("window.sawProgress") is True
    alice.composer.fill("the view")
    alice.composer.press("Enter")
    for person in (alice, bob):
        row = person.page.locator("li.message", has_text="the view")
        image = row.locator(".file-image img")
        expect(image).to_have_attribute("alt", "view.png")
        person.page.wait_for_function(
            "() => { const i = document.querySelector('.file-image img');"
            " return i && i.complete && i.naturalWidth === 320; }")  # the thumbnail
        expect(row.locator(".file-chip")).to_contain_text("notes.txt")
        expect(row.locator(".text")).to_have_text("the view")  # the link lines are hidden
    bob.page.locator(".file-image").click()
    lightbox = bob.page.get_by_role("dialog", name="view.png")
    expect(lightbox).to_be_visible()
    bob.page.wait_for_function(
        "() => document.querySelector('.lightbox img').naturalWidth === 800")
    bob.page.keyboard.press("Escape")
    expect(lightbox).to_have_count(0)
    expect(alice.page.locator(".upload-chip")).to_have_count(0)  # the composer is clear


def test_an_upload_can_be_cancelled_and_send_waits_for_uploads(people: People) -> None:
    """While an upload is on its way Send is disabled; Cancel stops it and drops its chip."""
    alice = signed_up(people, "alice")
    held: list[Route] = []

    def hold(route: Route) -> None:
        held.append(route)  # never answered: the upload stays on its way

    alice.page.route("**/api/v1/uploads*", hold)
    deliver(alice, "drop", {"name": "big.png", "type": "image/png", "b64": png((50, 50))})
    chip = alice.page.locator(".upload-chip.uploading")
    expect(chip.locator("progress")).to_have_count(1)
    alice.composer.fill("wait for it")
    expect(alice.page.get_by_role("button", name="Send")).to_be_disabled()
    chip.get_by_role("button", name="Cancel upload of big.png").click()
    expect(alice.page.locator(".upload-chip")).to_have_count(0)
    expect(alice.page.get_by_role("button", name="Send")).to_be_enabled()
    assert len(held) == 1
    with contextlib.suppress(Exception):  # the page aborted it already
        held[0].abort()
    alice.page.unroute("**/api/v1/uploads*")


def test_uploaded_html_and_svg_never_run_as_pages_of_the_chat(
        people: People, server: ServerProcess) -> None:
    """Opened directly, an uploaded HTML page and an SVG with script download as attachments:
    their script never runs (no alert, no change to the page's title)."""
    alice = signed_up(people, "alice")
    urls = []
    for name, body in (("page.html", b"<!DOCTYPE html><title>x</title><script>alert('html');"
                                     b"document.title='pwned'</script>"),
                       ("logo.svg", b'<svg xmlns="http://www.w3.org/2000/svg" '
                                    b'onload="alert(\'svg\')"><script>alert(1)</script></svg>')):
        answer = alice.page.evaluate(
            "async ([name, text]) => (await fetch('/api/v1/uploads?name=' + name,"
            " {method: 'POST', body: text})).json()", [name, body.decode()])
        urls.append(answer["url"])
    for url in urls:
        tab = alice.context.new_page()
        tab.on("dialog", lambda d: alice.dialogs.append(d.message))
        # Chromium turns the navigation into a download (an attachment): goto() says so.
        with tab.expect_download() as download, pytest.raises(
                PlaywrightError, match=r"Download is starting|ERR_ABORTED"):
            tab.goto(alice.base_url + url)
        assert download.value.suggested_filename in ("page.html", "logo.svg")
        assert tab.title() != "pwned"
        tab.close()
    assert alice.dialogs == []
    assert len(urls) == 2


def test_an_edited_message_keeps_its_file_live_and_after_a_reload(people: People) -> None:
    """alice edits the text of a message carrying a file (↑): bob's page shows the new text
    without the link line and the file's chip still, live and after a reload (history)."""
    alice = signed_up(people, "alice")
    bob = signed_up(people, "bob")
    deliver(alice, "paste", {"name": "notes.txt", "type": "text/plain",
                             "b64": base64.b64encode(b"meeting notes\n").decode()})
    expect(alice.page.locator(".upload-chip.done")).to_have_count(1)
    alice.composer.fill("the notes")
    alice.composer.press("Enter")
    expect(bob.page.locator("li.message", has_text="the notes").locator(".file-chip")
           ).to_contain_text("notes.txt")
    alice.composer.press("ArrowUp")
    expect(alice.composer).to_have_value("the notes")  # the link line is not in the composer
    alice.composer.fill("the notes, fixed")
    alice.composer.press("Enter")
    for reload in (False, True):
        if reload:
            bob.page.reload()
            bob.composer.wait_for()
        row = bob.page.locator("li.message", has_text="the notes, fixed")
        expect(row.locator(".text p")).to_have_text("the notes, fixed")  # no link line
        expect(row.locator(".text")).to_contain_text("(edited)")
        expect(row.locator(".file-chip")).to_contain_text("notes.txt")
    alice.assert_clean()
    bob.assert_clean()
