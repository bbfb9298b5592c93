"""The batch append as a PostgreSQL function: its SQL, and the codes it answers with.

`chat_append(batch, channel, window_ms)` takes a batch of messages as a JSON array and stores
them in one statement (so in one implicit transaction): the ids, the messages, the cid claims
and the commit notification (postgres_notify.py) commit together or not at all, after one round
trip. postgres_schema's migrations create it; postgres_batch.py calls it.
"""

from __future__ import annotations

# PostgreSQL refuses a NOTIFY payload of 8000 bytes or more; each stays below this (bytes).
PAYLOAD_MAX_BYTES = 7_900

# chat_append's answer per message, in the batch's order.
STORED, REPEAT, REUSED = 0, 1, 2
# What chat_append raises when another node claimed a cid of the batch since it looked.
RACED_SQLSTATE = "CH001"

# The function, created by migration v19 (a change is a later migration's CREATE OR REPLACE,
# and the messages table's columns are its to follow). Why each step is as it is:
# - The floor is taken shared before creating a counter: see postgres_retention.LOCK_FLOOR.
# - The batch's counter rows are locked in key order, so two nodes' batches never deadlock,
#   creating the missing ones at the floor. Each stays locked until the batch commits: an
#   append elsewhere to the same conversation waits, so ids are handed out in commit order, and
#   a batch that rolls back gives its ids back (no gap, and none used twice). A batch of repeats
#   only may create an empty counter: room retention deletes it later.
# - A cid seen within the window answers with the message stored for it (REPEAT; REUSED if that
#   was in another conversation); a repeat within the batch finds the claim its first made.
# - The claim fails if another node stored the same cid after the look-up (it waited for that
#   commit): the function raises RACED_SQLSTATE, the batch rolls back and its appends are retried
#   one by one, which finds the other node's message.
# - The notification names each conversation's first and last new id, in payloads below
#   PostgreSQL's 8000 bytes, sent by PostgreSQL when, and only if, the statement commits.
APPEND_FUNCTION = f"""
CREATE OR REPLACE FUNCTION chat_append(batch jsonb, channel text, window_ms bigint)
RETURNS TABLE (outcome smallint, id bigint, ts bigint)
LANGUAGE plpgsql AS $fn$
DECLARE
    m record;
    known record;
    next_id bigint;
    convs text[] := '{{}}';
    ids bigint[] := '{{}}';
    span record;
    entry text;
    payload text := '';
BEGIN
    PERFORM r.last_id FROM retired r FOR SHARE;
    INSERT INTO conversations AS c (key, last_id, last_ts)
        SELECT k, (SELECT r.last_id FROM retired r), 0
        FROM (SELECT DISTINCT e->>'conversation' AS k FROM jsonb_array_elements(batch) e) keys
        ORDER BY k
        ON CONFLICT (key) DO UPDATE SET last_id = c.last_id;
    FOR m IN SELECT * FROM jsonb_to_recordset(batch) AS t(
            conversation text, user_key text, username text, avatar text, text text, ts bigint,
            cid text, recipient text, guest int, reply_to bigint, bot int, author text) LOOP
        IF m.cid IS NOT NULL THEN
            SELECT k.conversation, k.id, k.ts INTO known FROM cids k
                WHERE k.user_key = m.user_key AND k.cid = m.cid;
            IF FOUND AND m.ts - known.ts < window_ms THEN
                outcome := CASE WHEN known.conversation = m.conversation THEN {REPEAT}
                                ELSE {REUSED} END;
                id := known.id;
                ts := known.ts;
                RETURN NEXT;
                CONTINUE;
            END IF;
        END IF;
        UPDATE conversations AS c SET last_id = c.last_id + 1,
                                      last_ts = greatest(c.last_ts, m.ts)
            WHERE c.key = m.conversation RETURNING c.last_id INTO next_id;
        INSERT INTO messages (conversation, id, username, avatar, text, ts, cid, recipient,
                              guest, reply_to, bot, author)
            VALUES (m.conversation, next_id, m.username, m.avatar, m.text, m.ts, m.cid,
                    m.recipient, m.guest, m.reply_to, m.bot, m.author);
        IF m.cid IS NOT NULL THEN
            INSERT INTO cids AS k (user_key, cid, conversation, id, ts)
                VALUES (m.user_key, m.cid, m.conversation, next_id, m.ts)
                ON CONFLICT (user_key, cid) DO UPDATE SET conversation = excluded.conversation,
                    id = excluded.id, ts = excluded.ts
                WHERE k.ts <= excluded.ts - window_ms;
            IF NOT FOUND THEN
                RAISE EXCEPTION 'cid % was stored by another node meanwhile', m.cid
                    USING ERRCODE = '{RACED_SQLSTATE}';
            END IF;
        END IF;
        convs := convs || m.conversation;
        ids := ids || next_id;
        outcome := {STORED};
        id := next_id;
        ts := m.ts;
        RETURN NEXT;
    END LOOP;
    FOR span IN SELECT s.c, min(s.i) AS first, max(s.i) AS last
                FROM unnest(convs, ids) WITH ORDINALITY AS s(c, i, n)
                GROUP BY s.c ORDER BY min(s.n) LOOP
        entry := json_build_array(span.c, span.first, span.last)::text;
        IF payload <> '' AND octet_length(payload) + octet_length(entry) + 3
                > {PAYLOAD_MAX_BYTES} THEN
            PERFORM pg_notify(channel, '[' || payload || ']');
            payload := '';
        END IF;
        payload := CASE WHEN payload = '' THEN entry ELSE payload || ',' || entry END;
    END LOOP;
    IF payload <> '' THEN
        PERFORM pg_notify(channel, '[' || payload || ']');
    END IF;
END
$fn$
"""
