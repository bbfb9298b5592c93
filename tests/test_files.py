"""Files (issue 18): upload, download, who may read, sniffing, images, limits (one server)."""

from __future__ import annotations

import asyncio
import io
import socket
import time
from typing import Any

import pytest
from PIL import Image

from chat.files.attach import WithFiles
from chat_server import ChatApplication
from tests.apiclient import Answer, Api
from tests.conftest import app_on_both_stores
from tests.helpers import Connect
from tests.test_auth_socket import bearer, error_of, signed_up
from tests.test_rooms import make_room

# Every test here (and in the modules that import it) on SQLite and on PostgreSQL: pytest
# knows a fixture by the module attribute that holds it.
app = app_on_both_stores


@pytest.fixture
def api(http_server: Any, http_port: int) -> Api:
    return Api(http_port)


def image_bytes(kind: str = "PNG", size: tuple[int, int] = (40, 30), red: int = 200,
                **save: Any) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, (red, 30, 30)).save(out, kind, **save)
    return out.getvalue()


async def upload(api: Api, token: str, data: bytes, name: str = "x.bin",
                 **headers: str) -> Answer:
    return await api.call("POST", f"/api/v1/uploads?name={name}", raw=data, token=token,
                          content_type="application/octet-stream", headers=headers)


async def download(api: Api, token: str, url: str) -> tuple[int, Any, bytes]:
    """GET a file: (status, headers, body bytes)."""
    from tornado.httpclient import AsyncHTTPClient

    response = await AsyncHTTPClient().fetch(f"{api.base}{url}", raise_error=False,
                                             headers={"Authorization": f"Bearer {token}"})
    return response.code, response.headers, response.body or b""


@pytest.mark.gen_test(timeout=30)
async def test_upload_then_download_as_a_member_and_a_non_member_of_a_private_room(
        app: ChatApplication, connect: Connect, api: Api) -> None:
    """A file posted in a private room is served to its members only; unattached, only to
    its uploader; the message and its files come together live and in history."""
    root_token = await signed_up(app, "root")
    ann_token = await signed_up(app, "ann")
    bob_token = await signed_up(app, "bob")
    ann = await connect(**bearer(ann_token))
    await ann.join("ann")
    tutorial = await connect()  # the Go tutorial's page: it reads `message` as text
    await tutorial.send({"email": "t@example.org", "username": "tut", "message": "hi"})
    await tutorial.recv()
    picture = image_bytes("PNG", (400, 300))
    answer = await upload(api, ann_token, picture, "holiday.png")
    assert answer.status == 201, answer.body
    shown = answer.body
    assert shown["type"] == "image/png" and (shown["width"], shown["height"]) == (400, 300)
    assert shown["url"] == f"/api/v1/files/{shown['id']}" and "thumbnail" in shown
    # Not yet attached: the uploader only.
    assert (await download(api, ann_token, shown["url"]))[0] == 200
    assert (await download(api, bob_token, shown["url"]))[0] == 404
    while (await ann.recv_type("message"))["username"] != "tut":
        pass  # the tutorial client's "hi"
    # In general (public), with a file of its own: the tutorial's client gets its link.
    note = (await upload(api, ann_token, b"general note", "note.txt")).body
    await ann.send({"type": "message", "room": "general", "files": [note["id"]], "cid": "g1"})
    assert (await ann.recv_type("message"))["files"] == [note]
    await ann.send({"type": "message", "room": "general", "files": [note["id"]], "cid": "g1"})
    assert (await ann.recv_type("message"))["files"] == [note]  # a repeat: the original
    seen = await tutorial.recv()
    assert seen["message"] == f"[note.txt, 12 bytes] {note['url']}"
    await make_room(ann, "secret", visibility="private")
    await ann.join("ann", "secret")
    await ann.send({"type": "message", "room": "secret", "text": "look", "files": [shown["id"]],
                    "cid": "f1"})
    live = await ann.recv_type("message")
    assert live["files"] == [shown]
    assert live["message"].startswith("look\n[holiday.png, ") and shown["url"] in live["message"]
    for outsider in (bob_token, root_token):  # another account, even the server's admin
        status, _, _ = await download(api, outsider, shown["url"])
        assert status == 404
        assert (await download(api, outsider, shown["thumbnail"]))[0] == 404
    status, headers, body = await download(api, ann_token, shown["url"])
    assert status == 200 and Image.open(io.BytesIO(body)).size == (400, 300)
    assert headers["Content-Type"] == "image/png"
    assert headers["Content-Disposition"].startswith("inline;")
    # Invited, bob reads it, and its history carries the files.
    bob = await connect(**bearer(bob_token))
    await bob.join("bob")
    await ann.send({"type": "invite", "room": "secret", "user": "bob"})
    await bob.recv_type("moderated")
    await bob.send({"type": "join", "room": "secret"})
    history = await bob.recv_type("history")
    assert history["messages"][-1]["files"] == [shown]
    assert (await download(api, bob_token, shown["url"]))[0] == 200
    thumb_status, thumb_headers, thumb = await download(api, bob_token, shown["thumbnail"])
    assert thumb_status == 200 and max(Image.open(io.BytesIO(thumb)).size) == 320
    assert thumb_headers["Content-Type"] == "image/jpeg"
    # Without a session, nothing.
    assert (await api.call("GET", shown["url"])).status == 401


@pytest.mark.gen_test(timeout=30)
async def test_files_in_a_direct_message_reach_its_two_parties_only(
        app: ChatApplication, connect: Connect, api: Api) -> None:
    """A dm's files: its two parties read them, a third account does not."""
    ann_token, bob_token, cat_token = [await signed_up(app, n) for n in ("ann", "bob", "cat")]
    ann = await connect(**bearer(ann_token))
    await ann.join("ann")
    shown = (await upload(api, ann_token, b"log line\n", "build.log")).body
    assert shown["type"] == "text/plain"
    await ann.send({"type": "dm", "to": "bob", "files": [shown["id"]]})
    sent = await ann.recv_type("dm")
    assert sent["files"] == [shown] and sent["message"].startswith("[build.log, 9 bytes]")
    assert (await download(api, bob_token, shown["url"]))[0] == 200
    assert (await download(api, cat_token, shown["url"]))[0] == 404


@pytest.mark.gen_test(timeout=30)
async def test_a_message_may_carry_only_its_author_s_uploads_and_only_so_many(
        app: ChatApplication, connect: Connect, api: Api) -> None:
    """Someone else's upload, an unknown id, too many files, or a guest: refused, named."""
    ann_token, bob_token = await signed_up(app, "ann"), await signed_up(app, "bob")
    bob = await connect(**bearer(bob_token))
    await bob.join("bob")
    anns = (await upload(api, ann_token, b"mine")).body["id"]
    refused = await error_of(bob, {"type": "message", "room": "general", "text": "x",
                                   "files": [anns]})
    assert refused["code"] == "no_such_file" and refused["file"] == anns
    many = [(await upload(api, bob_token, bytes([n]))).body["id"] for n in range(11)]
    refused = await error_of(bob, {"type": "message", "room": "general", "files": many})
    assert refused["code"] == "too_many_files" and refused["limit"] == 10
    bad = await error_of(bob, {"type": "message", "room": "general", "files": ["../etc"]})
    assert bad["code"] == "invalid_field" and bad["field"] == "files"
    guest = await connect()
    await guest.join("gus")
    refused = await error_of(guest, {"type": "message", "room": "general", "files": many[:1]})
    assert refused["code"] == "files_need_account"
    # Guests cannot upload either: the API has no session for them.
    assert (await upload(api, "no-such-token", b"x")).status == 401


@pytest.mark.gen_test(timeout=30)
async def test_an_empty_file_and_hostile_names(app: ChatApplication, api: Api) -> None:
    """Zero bytes is a file; a name trying traversal, controls or bidi tricks is only shown,
    cleaned, and no file lands anywhere but under its hash."""
    token = await signed_up(app, "ann")
    empty = await upload(api, token, b"", "empty.txt")
    assert empty.status == 201 and empty.body["size"] == 0
    assert empty.body["type"] == "application/octet-stream"
    assert (await download(api, token, empty.body["url"]))[2] == b""
    hostile = "..%2F..%2F..%2Fetc%2Fpasswd%0A%1B%5B31m%E2%80%AEgpj.exe"
    answer = await upload(api, token, b"data", hostile)
    assert answer.body["name"] == "passwd[31mgpj.exe"
    headers = (await download(api, token, answer.body["url"]))[1]
    assert headers["Content-Disposition"] == (
        "attachment; filename=\"passwd[31mgpj.exe\"; filename*=UTF-8''passwd%5B31mgpj.exe")
    assert app.files is not None
    stored = sorted(p.relative_to(app.files.disk.root) for p in app.files.disk.root.rglob("*")
                    if p.is_file())
    assert all(len(p.name) == 64 and p.parent.name == p.name[:2] for p in stored), stored


@pytest.mark.gen_test(timeout=30)
async def test_html_and_svg_are_attachments_that_never_render_on_our_origin(
        app: ChatApplication, api: Api) -> None:
    """An HTML page and an SVG with script, whatever type the client claims: sniffed, served
    as octet-stream attachments with nosniff and a sandboxing policy."""
    token = await signed_up(app, "ann")
    for data, name, sniffed in (
            (b"<!DOCTYPE html><script>alert(1)</script>", "page.png", "text/html"),
            (b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg">'
             b"<script>alert(1)</script></svg>", "logo.svg", "image/svg+xml")):
        answer = await upload(api, token, data, name, Content_Type="image/png")
        assert answer.body["type"] == sniffed
        status, headers, body = await download(api, token, answer.body["url"])
        assert status == 200 and body == data
        assert headers["Content-Type"] == "application/octet-stream"
        assert headers["Content-Disposition"].startswith("attachment;")
        assert headers["X-Content-Type-Options"] == "nosniff"
        assert headers["Content-Security-Policy"] == "default-src 'none'; sandbox"


@pytest.mark.gen_test(timeout=30)
async def test_a_jpeg_is_served_without_its_exif_and_gps(app: ChatApplication,
                                                          api: Api) -> None:
    """The served copy of a photo carries no EXIF (camera, GPS position), only its pixels."""
    token = await signed_up(app, "ann")
    exif = Image.Exif()
    exif[0x0110] = "SpyCam 3000"  # Model
    exif[0x8825] = {1: "N", 2: (52.0, 30.0, 15.0), 3: "E", 4: (13.0, 24.0, 0.0)}  # GPSInfo
    photo = image_bytes("JPEG", (64, 48), exif=exif.tobytes())
    assert b"SpyCam" in photo and Image.open(io.BytesIO(photo)).getexif().get_ifd(0x8825)
    answer = await upload(api, token, photo, "me.jpg")
    status, headers, served = await download(api, token, answer.body["url"])
    assert status == 200 and headers["Content-Type"] == "image/jpeg"
    assert b"SpyCam" not in served and b"Exif" not in served
    image = Image.open(io.BytesIO(served))
    assert image.size == (64, 48) and not image.getexif()
    assert answer.body["size"] == len(served)


@pytest.mark.gen_test(timeout=30)
async def test_a_file_that_does_not_decode_is_a_plain_file(app: ChatApplication,
                                                            api: Api) -> None:
    """PNG's signature before garbage: kept, as an attachment, with no size or thumbnail."""
    token = await signed_up(app, "ann")
    answer = await upload(api, token, b"\x89PNG\r\n\x1a\n" + b"garbage" * 100, "broken.png")
    assert answer.status == 201
    assert answer.body["type"] == "application/octet-stream"
    assert "width" not in answer.body and "thumbnail" not in answer.body
    headers = (await download(api, token, answer.body["url"]))[1]
    assert headers["Content-Disposition"].startswith("attachment;")


@pytest.mark.settings(upload_quota_bytes=3000, max_upload_bytes=2000)
@pytest.mark.gen_test(timeout=30)
async def test_the_quota_and_the_size_limit(app: ChatApplication, api: Api) -> None:
    """Past --max-upload-bytes: 413 file_too_large; past the account's quota: 413
    quota_exceeded; another account has its own quota."""
    ann, bob = await signed_up(app, "ann"), await signed_up(app, "bob")
    too_big = await upload(api, ann, b"x" * 2001)
    assert too_big.status == 413 and too_big.body["code"] == "file_too_large"
    assert "2,000" in too_big.body["reason"]
    assert (await upload(api, ann, b"a" * 2000)).status == 201
    over = await upload(api, ann, b"b" * 1500)
    assert over.status == 413 and over.body["code"] == "quota_exceeded"
    assert (await upload(api, ann, b"c" * 1000)).status == 201
    assert (await upload(api, bob, b"d" * 2000)).status == 201


@pytest.mark.gen_test(timeout=60)
async def test_concurrent_uploads_all_land_and_equal_bytes_are_stored_once(
        app: ChatApplication, api: Api) -> None:
    """Twelve uploads at once: twelve records; six distinct contents make six blobs."""
    token = await signed_up(app, "ann")
    bodies = [image_bytes("PNG", (500 + n % 6, 400), red=40 * (n % 6)) for n in range(12)]
    answers = await asyncio.gather(*(upload(api, token, body, f"p{n}.png")
                                     for n, body in enumerate(bodies)))
    assert [a.status for a in answers] == [201] * 12
    assert len({a.body["id"] for a in answers}) == 12
    assert app.files is not None
    blobs = [p for p in app.files.disk.root.rglob("*") if p.is_file()
             and p.parent.name != "tmp"]
    assert len(blobs) == 6 * 2  # each image and its thumbnail
    for n, answer in enumerate(answers):
        _, _, body = await download(api, token, answer.body["url"])
        assert Image.open(io.BytesIO(body)).size == (500 + n % 6, 400)


def raw_request(port: int, head: str) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    sock.sendall(head.encode("latin-1"))
    return sock


def read_status(sock: socket.socket) -> tuple[int, bytes]:
    """The status of the response on `sock`, and what of it was read."""
    got = b""
    while b"\r\n\r\n" not in got:
        chunk = sock.recv(65536)
        if not chunk:
            break
        got += chunk
    return int(got.split(b" ", 2)[1]), got


@pytest.mark.settings(max_upload_bytes=100_000)
@pytest.mark.gen_test(timeout=30)
async def test_an_oversized_upload_gets_413_before_its_body_is_sent(
        app: ChatApplication, api: Api, http_port: int) -> None:
    """A declared Content-Length past the limit: 413 at once, before a byte of the body; a
    chunked body: 413 as soon as it passes the limit, while the client still has more."""
    token = await signed_up(app, "ann")
    auth = f"Authorization: Bearer {token}\r\n"

    def declared() -> tuple[int, bytes]:
        sock = raw_request(http_port, f"POST /api/v1/uploads?name=a HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                                      f"{auth}Content-Length: 10000000\r\n\r\n")
        with sock:
            sock.sendall(b"x" * 1000)  # a little of the body, then wait for the answer
            return read_status(sock)

    status, head = await asyncio.to_thread(declared)
    assert status == 413 and b"file_too_large" in head

    def chunked() -> tuple[int, bytes, int]:
        sock = raw_request(http_port, f"POST /api/v1/uploads?name=a HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                                      f"{auth}Transfer-Encoding: chunked\r\n\r\n")
        sent = 0
        with sock:
            sock.settimeout(10)
            piece = b"%x\r\n%s\r\n" % (10_000, b"y" * 10_000)
            while sent < 150_000:  # past the limit, far from the end of what it would send
                sock.sendall(piece)
                sent += 10_000
            status, head = read_status(sock)
            return status, head, sent

    status, head, sent = await asyncio.to_thread(chunked)
    assert status == 413 and sent < 10_000_000
    assert app.files is not None
    assert not list(app.files.disk.tmp.iterdir())  # the partial upload is gone


def blobs(app: ChatApplication) -> set[str]:
    """The names of the blobs in the app's files folder."""
    assert app.files is not None
    return {p.name for p in app.files.disk.root.rglob("*") if p.is_file()
            and p.parent.name != "tmp"}


@pytest.mark.settings(unattached_upload_ttl=60, history_per_room=2)
@pytest.mark.gen_test(timeout=30)
async def test_files_go_with_their_messages_and_unattached_uploads_expire(
        app: ChatApplication, connect: Connect, api: Api) -> None:
    """release_files deletes a deleted message's files unless another message carries them;
    a moderator's removal releases its files at once, retention's at the sweep; an upload never
    attached is swept after --unattached-upload-ttl; blobs go with their last record."""
    assert app.files is not None
    files = app.files
    root_token = await signed_up(app, "root")
    root = await connect(**bearer(root_token))
    await root.join("root")
    kept, shared, pruned, removed, loose = [
        (await upload(api, root_token, f"content {n}".encode(), f"f{n}.txt")).body
        for n in range(5)]

    async def post(ids: list[str]) -> int:
        await root.send({"type": "message", "room": "general", "files": ids})
        return int((await root.recv_type("message"))["id"])

    first = await post([pruned["id"]])
    deleted = await post([shared["id"], kept["id"]])
    await post([shared["id"]])
    await files.release_files("general", [deleted])
    assert await files.store.get(kept["id"]) is None  # no other message carried it
    assert await files.store.get(shared["id"]) is not None  # another one does
    # Retention keeps 2 messages of general: posting 2 more prunes `first`.
    gone = await post([removed["id"]])
    await root.send({"type": "remove", "room": "general", "id": gone})
    await root.recv_type("deleted")  # a moderator's remove deletes: its files go at once
    await app.hub.store.prune()
    assert first not in [m.id for m in await app.hub.store.latest("general", 10)]
    before = blobs(app)
    now = int(time.time() * 1000)
    await files.sweep(now)  # within the ttl: the loose upload stays
    assert await files.store.get(pruned["id"]) is None
    assert await files.store.get(removed["id"]) is None
    assert await files.store.get(loose["id"]) is not None
    assert await files.store.get(shared["id"]) is not None
    await files.sweep(now + 61_000)
    assert await files.store.get(loose["id"]) is None
    left = blobs(app)
    assert left < before and len(left) == 1  # `shared` alone
    assert (await download(api, root_token, pruned["url"]))[0] == 404


@pytest.mark.gen_test(timeout=30)
async def test_an_author_s_delete_takes_the_message_s_files_with_it(
        app: ChatApplication, connect: Connect, api: Api) -> None:
    """`delete` of one's own message removes the files it alone carried: record, blob and
    download (the edit/delete service's hook, chat/node/hub.py)."""
    assert app.files is not None
    token = await signed_up(app, "ann")
    ann = await connect(**bearer(token))
    await ann.join("ann")
    made = (await upload(api, token, b"private notes", "notes.txt")).body
    before = blobs(app)
    await ann.send({"type": "message", "room": "general", "text": "see", "files": [made["id"]]})
    sent = await ann.recv_type("message")
    assert (await download(api, token, made["url"]))[0] == 200
    await ann.send({"type": "delete", "room": "general", "id": sent["id"]})
    await ann.recv_type("deleted")
    assert await app.files.store.get(made["id"]) is None
    assert len(blobs(app)) == len(before) - 1
    assert (await download(api, token, made["url"]))[0] == 404


@pytest.mark.gen_test(timeout=30)
async def test_a_sweep_never_deletes_the_bytes_of_an_upload_that_lands_meanwhile(
        app: ChatApplication, api: Api) -> None:
    """The sweep finds a blob unused (its last record deleted), and before it deletes the blob
    an upload of the same bytes lands: that upload's file stays downloadable."""
    assert app.files is not None
    files = app.files
    token = await signed_up(app, "ann")
    old = (await upload(api, token, b"the same bytes", "old.txt")).body
    record = await files.store.get(old["id"])
    assert record is not None
    landed: list[dict[str, Any]] = []
    asked = files.store.blob_used

    async def upload_meanwhile(blob: str) -> bool:
        used = await asked(blob)  # the sweep's first look: unused
        if not landed:
            landed.append((await upload(api, token, b"the same bytes", "new.txt")).body)
        return used

    files.store.blob_used = upload_meanwhile  # type: ignore[method-assign,assignment]
    try:
        await files._delete(old["id"], record.sha256, record.thumb_sha256)  # the sweep's step
    finally:
        files.store.blob_used = asked  # type: ignore[method-assign]
    status, _, body = await download(api, token, landed[0]["url"])
    assert (status, body) == (200, b"the same bytes")
    assert (await download(api, token, old["url"]))[0] == 404


@pytest.mark.gen_test(timeout=30)
async def test_a_blob_a_dead_sweep_took_out_is_put_back_or_deleted_by_the_next(
        app: ChatApplication, api: Api) -> None:
    """A node died between taking blobs out and settling them: the next sweep puts back the
    one a record names (downloadable again) and deletes the one no record names."""
    assert app.files is not None
    files = app.files
    token = await signed_up(app, "ann")
    kept = (await upload(api, token, b"still wanted", "kept.txt")).body
    gone = (await upload(api, token, b"no longer wanted", "gone.txt")).body
    kept_record, gone_record = (await files.store.get(kept["id"]),
                                await files.store.get(gone["id"]))
    assert kept_record is not None and gone_record is not None
    await files.store.delete(gone["id"])
    for record in (kept_record, gone_record):
        assert files.disk.take_out(record.sha256) is not None  # then the node died
    assert (await download(api, token, kept["url"]))[0] != 200
    await files._settle_taken(time.time() + 1)
    status, _, body = await download(api, token, kept["url"])
    assert (status, body) == (200, b"still wanted")
    assert not files.disk.path_of(gone_record.sha256).exists()
    assert list(files.disk.tmp.glob("*.out")) == []


@pytest.mark.gen_test(timeout=30)
async def test_a_cookie_upload_from_another_site_is_refused(app: ChatApplication,
                                                            api: Api) -> None:
    """The session cookie uploads only from the page's own origin (CSRF): another site's
    request gets 403 cross_origin, and nothing is stored."""
    token = await signed_up(app, "ann")
    for headers in ({"Origin": "http://evil.example"}, {"Sec-Fetch-Site": "cross-site"}):
        refused = await api.call("POST", "/api/v1/uploads?name=x", raw=b"data", cookie=token,
                                 content_type="text/plain", headers=headers)
        assert refused.status == 403 and refused.body["code"] == "cross_origin"
    own = await api.call("POST", "/api/v1/uploads?name=x", raw=b"data", cookie=token,
                         content_type="text/plain", headers={"Origin": api.base})
    assert own.status == 201
    assert app.files is not None
    assert await app.files.store.used(1) == 4  # ann, the first account: the one upload alone


@pytest.mark.settings(header_timeout=1.0)
@pytest.mark.gen_test(timeout=30)
async def test_an_upload_slower_than_the_header_timeout_still_lands(
        app: ChatApplication, api: Api, http_port: int) -> None:
    """A body that takes longer than --header-timeout (the API's body timeout) to arrive is
    still received: an upload's time is sized to its limit."""
    token = await signed_up(app, "ann")

    def trickle() -> tuple[int, bytes]:
        sock = raw_request(http_port, "POST /api/v1/uploads?name=slow.txt HTTP/1.1\r\n"
                                      f"Host: 127.0.0.1\r\nAuthorization: Bearer {token}\r\n"
                                      "Transfer-Encoding: chunked\r\n\r\n")
        with sock:
            for _ in range(5):
                sock.sendall(b"5\r\nslow \r\n")
                time.sleep(0.5)  # 2.5 s in all: past the 1 s body timeout
            sock.sendall(b"0\r\n\r\n")
            return read_status(sock)

    status, head = await asyncio.to_thread(trickle)
    assert status == 201, head


@pytest.mark.gen_test(timeout=30)
async def test_an_edit_keeps_the_message_s_files_and_their_link_lines(
        app: ChatApplication, connect: Connect, api: Api) -> None:
    """An edit without the link line (as the page sends it) or with it (a tutorial client's)
    changes the text only: history still gives the message its file, the text ends with one
    link line, and the file still downloads."""
    token = await signed_up(app, "ann")
    ann = await connect(**bearer(token))
    await ann.join("ann")
    made = (await upload(api, token, b"private notes", "notes.txt")).body
    line = f"[notes.txt, 13 bytes] {made['url']}"
    await ann.send({"type": "message", "room": "general", "text": "see", "files": [made["id"]]})
    sent = await ann.recv_type("message")
    assert sent["message"] == f"see\n{line}"
    for typed in ("see, fixed", f"see, fixed again\n{line}"):
        await ann.send({"type": "edit", "room": "general", "id": sent["id"], "text": typed})
        edited = await ann.recv_type("edited")
        assert edited["message"] == f"{typed.split(chr(10))[0]}\n{line}"
    await ann.send({"type": "history", "room": "general"})
    page = await ann.recv_type("history")
    [shown] = [m for m in page["messages"] if m["id"] == sent["id"]]
    assert shown["files"] == [made] and shown["message"] == f"see, fixed again\n{line}"
    assert (await download(api, token, made["url"]))[0] == 200


@pytest.mark.gen_test(timeout=30)
async def test_a_message_edited_before_edits_kept_links_still_shows_its_files(
        app: ChatApplication, connect: Connect, api: Api) -> None:
    """A message whose stored text lost its link line (an edit of old) is found by its
    links all the same: history gives it its file."""
    token = await signed_up(app, "ann")
    ann = await connect(**bearer(token))
    await ann.join("ann")
    made = (await upload(api, token, b"private notes", "notes.txt")).body
    await ann.send({"type": "message", "room": "general", "text": "see", "files": [made["id"]]})
    sent = await ann.recv_type("message")
    assert isinstance(app.hub.store, WithFiles)
    inner = app.hub.store.inner  # under WithFiles: an edit as it was stored before the fix
    assert await inner.edit("general", sent["id"], "see", int(time.time() * 1000)) is not None
    await ann.send({"type": "history", "room": "general"})
    page = await ann.recv_type("history")
    [shown] = [m for m in page["messages"] if m["id"] == sent["id"]]
    assert shown["files"] == [made] and shown["message"] == "see"
