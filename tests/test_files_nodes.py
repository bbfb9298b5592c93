"""Files across processes: a decompression bomb in a real server, and a cluster's two nodes
sharing one files folder."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import pytest
from tornado.httpclient import AsyncHTTPClient

from chat.config import ConfigError, Settings
from tests.serverproc import Spawn, assert_one_line_error, free_port, run
from tests.test_accounts_cli import PASSWORD, login
from tests.test_auth_nodes import create, signed_in
from tests.test_cluster import Cluster, cluster, redis_db  # noqa: F401 (fixtures)

BOMB_SIDE = 20_000  # 400 million grey pixels: 400 MB decoded, ~400 KB as a PNG


def png_bomb(side: int = BOMB_SIDE) -> bytes:
    """A valid greyscale PNG of side x side black pixels, made without decoding anything."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))

    packer = zlib.compressobj(9)
    row = b"\x00" * (side + 1)  # filter byte, then the row's pixels
    idat = b"".join(packer.compress(row) for _ in range(side)) + packer.flush()
    header = struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", idat)
            + chunk(b"IEND", b""))


def peak_rss_kib(pid: int) -> int:
    """The process's peak resident memory (VmHWM), KiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise AssertionError("no VmHWM")


async def fetch(port: int, path: str, token: str, body: bytes | None = None) -> tuple[int, bytes]:
    response = await AsyncHTTPClient().fetch(
        f"http://127.0.0.1:{port}{path}", method="GET" if body is None else "POST", body=body,
        headers={"Authorization": f"Bearer {token}"}, raise_error=False, request_timeout=60)
    return response.code, response.body or b""


@pytest.mark.gen_test(timeout=120)
async def test_a_decompression_bomb_is_kept_as_a_plain_file_in_bounded_memory(
        spawn: Spawn, tmp_path: Path) -> None:
    """A 400-megapixel PNG of 400 KB: a real server keeps it as a plain file, never decoded;
    its peak memory grows by far less than the image's 400 MB."""
    import json

    db = str(tmp_path / "chat.db")
    create(db, "ann")
    port = free_port()
    child = spawn(f"--port={port}", f"--db={db}", ready_port=port)
    token = await login(db, "ann", PASSWORD)
    before = peak_rss_kib(child.proc.pid)
    bomb = png_bomb()
    assert len(bomb) < 1_000_000
    status, body = await fetch(port, "/api/v1/uploads?name=bomb.png", token, bomb)
    assert status == 201, body
    shown = json.loads(body)
    assert shown["type"] == "application/octet-stream" and "width" not in shown
    grown_mib = (peak_rss_kib(child.proc.pid) - before) / 1024
    assert grown_mib < 100, f"the server's peak memory grew by {grown_mib:.0f} MiB"
    assert (tmp_path / "files").is_dir()  # the default: beside the database


def test_file_settings_are_checked_with_their_names() -> None:
    """Bad file limits are refused naming the setting and the rule; the server exits 2."""
    with pytest.raises(ConfigError, match="--max-upload-bytes is 0; it must be 1 or more"):
        Settings(max_upload_bytes=0)
    with pytest.raises(ConfigError, match=r"--upload-quota-bytes is 10; it must be 0 or at "
                                          r"least --max-upload-bytes \(100\)"):
        Settings(max_upload_bytes=100, upload_quota_bytes=10)
    with pytest.raises(ConfigError, match="--files-per-message is 0"):
        Settings(files_per_message=0)
    with pytest.raises(ConfigError, match="--max-image-pixels is 5"):
        Settings(max_image_pixels=5)
    line = assert_one_line_error(run("--unattached-upload-ttl=1"))
    assert "--unattached-upload-ttl is 1.0; it must be at least 60" in line


@pytest.mark.postgres
@pytest.mark.redis
@pytest.mark.gen_test(timeout=120)
async def test_a_file_uploaded_through_one_node_is_served_by_the_other(
        cluster: Cluster, postgres_url: str, tmp_path: Path) -> None:  # noqa: F811
    """Two nodes on one database and one files folder: a file uploaded and posted through A
    reaches B's reader live with the message, and B serves it; a non-reader gets 404."""
    shared = tmp_path / "shared-files"
    create(postgres_url, "root", "ann", "bob")
    a, b = cluster(2, CHAT_FILES_DIR=str(shared))
    ann_token = await login(postgres_url, "ann", PASSWORD)
    bob_token = await login(postgres_url, "bob", PASSWORD)
    ann = await signed_in(a.port, ann_token, "ann")
    bob = await signed_in(b.port, bob_token, "bob")
    status, body = await fetch(a.port, "/api/v1/uploads?name=notes.txt", ann_token,
                               b"shared notes\n")
    assert status == 201, body
    import json

    shown = json.loads(body)
    await ann.send({"type": "message", "room": "general", "text": "notes",
                    "files": [shown["id"]]})
    live = await bob.recv_type("message")
    assert live["files"] == [shown]
    assert await fetch(b.port, shown["url"], bob_token) == (200, b"shared notes\n")
    await ann.send({"type": "dm", "to": "bob", "files": [shown["id"]]})
    assert (await bob.recv_type("dm"))["files"] == [shown]
    root_token = await login(postgres_url, "root", PASSWORD)
    status, body = await fetch(b.port, "/api/v1/uploads?name=x", root_token, b"mine")
    private = json.loads(body)
    assert (await fetch(b.port, private["url"], ann_token))[0] == 404
    assert (await fetch(a.port, private["url"], root_token))[0] == 200


def test_an_unusable_files_dir_is_a_one_line_error(tmp_path: Path) -> None:
    """--files-dir that cannot be made (under a file) stops the server with exit 2, naming it."""
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    result = run(f"--files-dir={blocker / 'files'}", "--port=0")
    assert result.returncode == 2
    line = assert_one_line_error(result)
    assert "--files-dir: cannot use" in line and "a-file/files" in line
