"""Slack's incoming-webhook payloads reduced to text, and mrkdwn mapped to our Markdown."""

from __future__ import annotations

from typing import Any

import pytest

from chat.hooks.slack import PayloadError, mrkdwn, payload_text


@pytest.mark.parametrize(("given", "expected"), [
    ("*bold* and _italic_", "**bold** and _italic_"),
    ("~gone~ but not~here~", "~~gone~~ but not~here~"),
    ("**already** and ~~already~~", "**already** and ~~already~~"),
    ("2 * 3 * 4", "2 * 3 * 4"),
    ("<https://x.org/a?b=1&amp;c=2|the *page*>", "[the **page**](https://x.org/a?b=1&c=2)"),
    ("see <https://x.org>", "see https://x.org"),
    ("<@U024BE7LH> and <@U1|ann>, <#C1|ops>", "@U024BE7LH and @ann, #ops"),
    ("<!here> <!channel> <!subteam^S1|@oncall>", "@here @channel @oncall"),
    ("<!date^1392734382^{date}|Feb 18, 2014>", "Feb 18, 2014"),
    ("a &lt;b&gt; &amp; c", "a <b> & c"),
    ("&amp;lt; stays text", "&lt; stays text"),
    ("`*not bold*` and ```\n*nor* <x|y>\n```", "`*not bold*` and ```\n*nor* <x|y>\n```"),
])
def test_mrkdwn_becomes_markdown_where_the_two_differ(given: str, expected: str) -> None:
    """Bold, strike, links, mentions and entities are mapped; italics and code are kept."""
    assert mrkdwn(given) == expected


@pytest.mark.parametrize(("payload", "expected"), [
    ({"text": "plain"}, "plain"),
    ({"text": "notification only", "blocks": [
        {"type": "header", "text": {"type": "plain_text", "text": "Deploy"}},
        {"type": "section", "text": {"type": "mrkdwn", "text": "*ok*"},
         "fields": [{"type": "mrkdwn", "text": "*Env*\nprod"}]},
        {"type": "divider"}, {"type": "image", "image_url": "https://x.org/i.png"},
        {"type": "actions", "elements": [{"type": "button", "text": {"text": "Open"}}]},
        {"type": "context", "elements": [{"type": "mrkdwn", "text": "by ci"},
                                         {"type": "image", "image_url": "x"}]}]},
     "**Deploy**\n**ok**\n**Env**\nprod\nby ci"),
    ({"blocks": [{"type": "rich_text", "elements": [{"type": "rich_text_section", "elements": [
        {"type": "text", "text": "see "},
        {"type": "link", "url": "https://x.org", "text": "this"}]}]}]},
     "see [this](https://x.org)"),
    ({"text": "head", "attachments": [
        {"pretext": "pre", "title": "T", "text": "body",
         "fields": [{"title": "Severity", "value": "high", "short": True}]},
        {"fallback": "fb only", "color": "#ff0000"}]},
     "head\npre\n**T**\nbody\n**Severity**: high\nfb only"),
])
def test_a_payload_posts_its_blocks_or_text_then_its_attachments(
        payload: dict[str, Any], expected: str) -> None:
    """Blocks replace `text` (Slack's notification fallback); attachments follow; layout-only
    blocks show nothing; an attachment with nothing else shows its fallback."""
    assert payload_text(payload) == expected


@pytest.mark.parametrize(("payload", "reason"), [
    ({}, "no text"),
    ({"attachments": [{"color": "good"}], "blocks": [{"type": "divider"}]}, "no text"),
    ({"text": 5}, "'text' must be a string"),
    ({"attachments": {"text": "x"}}, "'attachments' must be an array"),
])
def test_a_payload_without_text_or_of_wrong_types_is_refused(payload: dict[str, Any],
                                                            reason: str) -> None:
    """Slack's own refusals (no_text, invalid_payload), with what is wrong."""
    with pytest.raises(PayloadError, match=reason):
        payload_text(payload)
