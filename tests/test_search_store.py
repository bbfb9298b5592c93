"""Full-text search in the history stores (chat/store/search.py), on SQLite and PostgreSQL."""

from __future__ import annotations

import contextlib
import sqlite3
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from chat.record import StoredMessage, dm_key
from chat.search.query import excerpt, terms
from chat.store import SQLiteStore, sqlite_schema
from chat.store.postgres import PostgresStore
from chat.store.search import Filters, Found, MessageSearch, Scope

BACKENDS = ["sqlite-memory", "sqlite-file", pytest.param("postgres", marks=pytest.mark.postgres)]
EVERYWHERE = Scope(every_room=True)
ALL = Filters()


class Backend:
    """A store of one backend, and a way to run SQL on its database behind its back."""

    def __init__(self, kind: str, tmp_path: Path, url: str | None) -> None:
        self.kind = kind
        self.path = str(tmp_path / "chat.db")
        self.url = url

    def store(self, **kwargs: Any) -> Any:
        if self.kind == "postgres":
            assert self.url is not None
            return PostgresStore(self.url, **kwargs)
        return SQLiteStore(":memory:" if self.kind == "sqlite-memory" else self.path, **kwargs)

    def execute(self, sql: str, params: tuple[Any, ...]) -> None:
        """Run one statement (SQLite's `?` markers) on the database, as another process would."""
        if self.kind == "postgres":
            assert self.url is not None
            with psycopg.connect(self.url, autocommit=True) as conn:
                conn.execute(sql.replace("?", "%s"), params)
        else:
            with contextlib.closing(sqlite3.connect(self.path, isolation_level=None)) as conn:
                conn.execute(sql, params)


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    url = request.getfixturevalue("postgres_url") if request.param == "postgres" else None
    return Backend(request.param, tmp_path, url)


@contextlib.asynccontextmanager
async def running(store: Any) -> AsyncIterator[Any]:
    await store.start()
    try:
        yield store
    finally:
        await store.close()


async def post(store: Any, text: str, room: str = "general", *, user: str = "ann",
               ts: int = 1_000, to: str | None = None) -> StoredMessage:
    message: StoredMessage = (await store.append(room, username=user, avatar="", text=text,
                                                 ts=ts, to=to))[0]
    return message


async def find(store: MessageSearch, query: str, scope: Scope = EVERYWHERE,
               filters: Filters = ALL, offset: int = 0, limit: int = 50) -> Found:
    return await store.search(terms(query), scope, filters, offset=offset, limit=limit)


def texts(found: Found) -> list[str]:
    return [message.text for message in found.messages]


@pytest.mark.gen_test
async def test_search_finds_by_word_and_by_prefix(backend: Backend) -> None:
    """A word finds the messages holding it, any case; `word*` those with a word it starts."""
    async with running(backend.store()) as store:
        await post(store, "We deploy on Friday")
        await post(store, "The deployment failed")
        await post(store, "Nothing to see")
        assert texts(await find(store, "DEPLOY")) == ["We deploy on Friday"]
        assert sorted(texts(await find(store, "deplo*"))) == ["The deployment failed",
                                                             "We deploy on Friday"]
        assert texts(await find(store, "deplo")) == []
        # Every word must be there: "deploy friday" is one message, "deploy failed" none.
        assert texts(await find(store, "friday deploy")) == ["We deploy on Friday"]
        assert texts(await find(store, "deploy failed")) == []


@pytest.mark.gen_test
async def test_search_ranks_a_message_about_the_words_first(backend: Backend) -> None:
    """A short message that repeats the word ranks above a long one that mentions it once."""
    async with running(backend.store()) as store:
        await post(store, "the release notes mention the outage only once, among many other "
                          "things about the week that went by and the plans for the next", ts=1)
        await post(store, "outage: outage in the outage room", ts=2)
        await post(store, "a short outage note", ts=3)
        assert texts(await find(store, "outage")) == ["outage: outage in the outage room",
                                                      "a short outage note",
                                                      "the release notes mention the outage "
                                                      "only once, among many other things "
                                                      "about the week that went by and the "
                                                      "plans for the next"]


@pytest.mark.gen_test
async def test_search_ranks_the_newest_hits_of_its_window_only(backend: Backend) -> None:
    """With a window of 2, the best hit, older than two others, is not found."""
    async with running(backend.store()) as store:
        await post(store, "outage outage outage", ts=1)
        await post(store, "outage and then many more words about other things", ts=2)
        await post(store, "an outage and many other words about something else", ts=3)
        assert texts(await find(store, "outage"))[0] == "outage outage outage"
        found = await find(store, "outage", filters=Filters(window=2))
        assert sorted(texts(found)) == ["an outage and many other words about something else",
                                        "outage and then many more words about other things"]


@pytest.mark.gen_test
async def test_search_stays_within_its_scope(backend: Backend) -> None:
    """Only the scope's rooms and direct conversations are searched, less its hidden ids."""
    mine, theirs = dm_key("a:1", "a:2"), dm_key("a:2", "a:3")
    async with running(backend.store()) as store:
        await post(store, "secret plan", "general")
        hidden = await post(store, "secret removed", "general")
        await post(store, "secret private", "staff")
        await post(store, "secret between us", mine, to="bob")
        await post(store, "secret between them", theirs, to="cat")
        scope = Scope(rooms=["general"], directs=[mine], hidden=[("general", hidden.id)])
        assert sorted(texts(await find(store, "secret", scope))) == ["secret between us",
                                                                    "secret plan"]
        # every_room is every room, and no direct conversation but the scope's.
        assert sorted(texts(await find(store, "secret", Scope(every_room=True)))) == [
            "secret plan", "secret private", "secret removed"]
        assert texts(await find(store, "secret", Scope())) == []


@pytest.mark.gen_test
async def test_search_filters_by_room_author_and_time(backend: Backend) -> None:
    """Filters narrow to one conversation, one author (any case), and a time range."""
    async with running(backend.store()) as store:
        await post(store, "build one", "general", user="Ann", ts=100)
        await post(store, "build two", "dev", user="bob", ts=200)
        await post(store, "build three", "dev", user="ann", ts=300)
        assert sorted(texts(await find(store, "build", filters=Filters(conversation="dev")))) == [
            "build three", "build two"]
        assert sorted(texts(await find(store, "build", filters=Filters(author="ANN")))) == [
            "build one", "build three"]
        assert texts(await find(store, "build", filters=Filters(after=200, before=300))) == [
            "build two"]
        # Exactly the conversation named, whatever its words share with others'.
        await post(store, "build four", "dev-ops", ts=400)
        await post(store, "build five", "---", ts=500)
        pair = dm_key("a:1", "a:2")
        await post(store, "build six", pair, ts=600, to="bob")
        for conversation, found in (("ops", []), ("dev-ops", ["build four"]),
                                    ("---", ["build five"]), (pair, ["build six"]),
                                    (dm_key("a:1", "a:3"), [])):
            scope = Scope(every_room=True, directs=[pair])
            assert texts(await find(store, "build", scope,
                                    Filters(conversation=conversation))) == found, conversation


@pytest.mark.gen_test
async def test_search_pages_through_every_hit_once(backend: Backend) -> None:
    """Pages by offset list every hit once, in rank order (newest first among equals)."""
    async with running(backend.store()) as store:
        for n in range(7):
            await post(store, f"standup {n}", ts=n)
        seen: list[str] = []
        offset = 0
        while True:
            found = await find(store, "standup", offset=offset, limit=3)
            seen += texts(found)
            offset += len(found.messages)
            if not found.more:
                break
        assert seen == [f"standup {n}" for n in reversed(range(7))]


@pytest.mark.gen_test
async def test_the_index_follows_an_update_and_a_delete_of_the_row(backend: Backend) -> None:
    """An edit (UPDATE of the text) and a delete of the row, by any code, change what is found."""
    if backend.kind == "sqlite-memory":
        pytest.skip("no other connection reaches an in-memory database")
    async with running(backend.store()) as store:
        edited = await post(store, "the password is hunter2")
        deleted = await post(store, "my pin is 1234")
        backend.execute("UPDATE messages SET text = ? WHERE conversation = ? AND id = ?",
                        ("the password is [edited]", "general", edited.id))
        backend.execute("DELETE FROM messages WHERE conversation = ? AND id = ?",
                        ("general", deleted.id))
        assert texts(await find(store, "hunter2")) == []
        assert texts(await find(store, "edited password")) == ["the password is [edited]"]
        assert texts(await find(store, "pin")) == []
        assert texts(await find(store, "1234")) == []


@pytest.mark.gen_test
async def test_retention_s_deletes_leave_the_index(backend: Backend) -> None:
    """Messages retention deletes are no longer found."""
    async with running(backend.store(per_conversation=2)) as store:
        for n in range(4):  # now: PostgreSQL's retention looks at conversations written lately
            await post(store, f"ticket {n}", ts=time.time_ns() // 1_000_000)
        await store.prune()
        assert sorted(texts(await find(store, "ticket"))) == ["ticket 2", "ticket 3"]


HOSTILE = ['"', '""', "'", "deploy OR secret", "NOT deploy", "deploy NEAR(secret, 2)",
           "NEAR(deploy secret)", "text:secret", "{text}: secret", "^deploy", "-secret",
           "deploy AND", "(deploy", "deploy)", "*", "deploy**", "secret\\", "%", "_",
           "a:b:c", "'; DROP TABLE messages; --", "\x00", "deploy & !secret | x:*",
           "deploy <-> secret", "'deploy':*", "OR", "AND", "NEAR"]


@pytest.mark.gen_test
async def test_query_syntax_is_only_words(backend: Backend) -> None:
    """FTS5 and tsquery operators, quotes and column filters are words or separators: no
    error, no operator applied."""
    async with running(backend.store()) as store:
        await post(store, "deploy now")
        await post(store, "secret things")
        await post(store, "near or not and text")
        for query in HOSTILE:
            found = await find(store, query)
            words = {term.word for term in terms(query)}
            for text in texts(found):  # every hit holds every word of the query: no OR, NOT
                assert words <= set(text.split()), (query, text)
        assert texts(await find(store, "NEAR OR NOT")) == ["near or not and text"]


@pytest.mark.gen_test
async def test_both_backends_cut_text_into_the_same_words(backend: Backend) -> None:
    """Punctuation separates words (host names, versions, snake_case), diacritics count."""
    async with running(backend.store()) as store:
        await post(store, "see deploy.example.com for v1.2 of snake_case code")
        await post(store, "a naïve café")
        for query in ("example", "deploy", "v1 2", "snake", "case", "com"):
            assert len((await find(store, query)).messages) == 1, query
        assert texts(await find(store, "NAÏVE café")) == ["a naïve café"]
        assert texts(await find(store, "naive")) == []


@pytest.mark.gen_test
async def test_search_indexes_the_history_stored_before_it(tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch,
                                                           ) -> None:
    """Opening a file from before search builds the index over the messages it holds."""
    path = str(tmp_path / "old.db")
    before = sqlite_schema.MIGRATIONS.index(sqlite_schema._v17_search)
    with monkeypatch.context() as patch:
        patch.setattr(sqlite_schema, "MIGRATIONS", sqlite_schema.MIGRATIONS[:before])
        async with running(SQLiteStore(path)) as store:
            await post(store, "an old message about kittens")
    async with running(SQLiteStore(path)) as store:
        assert texts(await find(store, "kittens")) == ["an old message about kittens"]
        await post(store, "a new message about kittens")
        assert len((await find(store, "kittens")).messages) == 2


def test_an_excerpt_shows_the_text_around_its_first_hit_as_plain_segments() -> None:
    """A long text is cut around the first hit, with … where it goes on; markup stays text."""
    text = "x " * 200 + "<b>deploy</b> the DEPLOYMENT now " + "y " * 200
    segments = excerpt(text, terms("deploy*"))
    shown = "".join(str(part) for part, _ in segments)
    assert segments[0] == ["…", False] and segments[-1] == ["…", False]
    assert len(shown) == 160 + 2
    assert [part for part, hit in segments if hit] == ["deploy", "DEPLOYMENT"]
    assert "<b>" in shown  # as text: the client never renders it as markup
    assert excerpt("no hit here", terms("zzz")) == [["no hit here", False]]
