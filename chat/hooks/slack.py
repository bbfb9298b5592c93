"""Slack's incoming-webhook payload reduced to one message text, its mrkdwn mapped to Markdown.

What Slack documents (api.slack.com/messaging/webhooks, /reference/surfaces/formatting):
`text`; `attachments`, each with `pretext`, `title` (+ `title_link`), `text`, `fields` and
`fallback` (shown when it has nothing else); `blocks`, whose text is kept (section, header,
context, rich_text, fields) and whose layout is not. When blocks are given, Slack shows them
and uses `text` only for notifications, so the text then comes from the blocks alone.
"""

from __future__ import annotations

import html
import re
from typing import Any


class PayloadError(ValueError):
    """The payload is not one Slack would accept; `str()` says what is wrong."""


# <https://x|label>, <@U123>, <@U123|name>, <#C123|general>, <!here>, <!subteam^S1|@team>,
# <!date^1392734382^{date}|Feb 18, 2014>: Slack's angle-bracket forms.
_ANGLED = re.compile(r"<([^<>\n]+)>")
# mrkdwn's *bold* and ~strike~, not touching Markdown's **bold** or ~~strike~~ already there.
_BOLD = re.compile(r"(?<![*\w])\*(?![*\s])([^*\n]+?)(?<![*\s])\*(?![*\w])")
_STRIKE = re.compile(r"(?<![~\w])~(?![~\s])([^~\n]+?)(?<![~\s])~(?![~\w])")
# Code is left as written: ``` blocks and `spans` (mrkdwn and Markdown agree on them).
_CODE = re.compile(r"```.*?```|`[^`\n]*`", re.DOTALL)


def _angled(match: re.Match[str]) -> str:
    inner = match.group(1)
    target, _, label = inner.partition("|")
    if target.startswith(("@", "#")):  # a user or channel: its label, else its id
        return target[0] + (label.lstrip("@#") if label else target[1:])
    if target.startswith("!"):  # <!here>, <!channel>, <!subteam^..|@x>, <!date^..|text>
        if label:
            return label
        return "@" + target[1:].split("^")[0]
    if label:
        return f"[{label}]({target})"
    return target  # a bare <url>: the page links bare URLs


def _outside_code(text: str) -> str:
    text = _ANGLED.sub(_angled, text)
    text = _BOLD.sub(r"**\1**", text)
    text = _STRIKE.sub(r"~~\1~~", text)
    # Slack escapes only these three; unescaped last, so an escaped "&lt;x&gt;" stays text.
    return html.unescape(text) if "&" in text else text


def mrkdwn(text: str) -> str:
    """Slack's mrkdwn as our Markdown: *b* → **b**, ~s~ → ~~s~~, <url|l> → [l](url),
    mentions as plain text, &amp; &lt; &gt; unescaped; code left alone (_italic_ is the same)."""
    out: list[str] = []
    at = 0
    for code in _CODE.finditer(text):
        out.append(_outside_code(text[at:code.start()]))
        out.append(html.unescape(code.group()))
        at = code.end()
    out.append(_outside_code(text[at:]))
    return "".join(out)


def _string(value: Any) -> str:
    return value.strip() if isinstance(value, str) else ""


def _text_object(value: Any) -> str:
    """A block's text object ({type: mrkdwn|plain_text, text}) or a string, as text."""
    if isinstance(value, dict):
        return _string(value.get("text"))
    return _string(value)


def _rich_text(elements: Any) -> str:
    """A rich_text block's elements (sections, lists, quotes, preformatted) as text."""
    parts: list[str] = []
    for element in elements if isinstance(elements, list) else []:
        if not isinstance(element, dict):
            continue
        if isinstance(element.get("elements"), list):
            parts.append(_rich_text(element["elements"]))
        elif element.get("type") == "link":
            url, label = _string(element.get("url")), _string(element.get("text"))
            parts.append(f"<{url}|{label}>" if label else f"<{url}>")
        else:
            parts.append(str(element.get("text") or element.get("name") or ""))
    return "".join(parts)


def block_text(block: Any) -> str:
    """One block's text (mrkdwn); "" for a block that shows none (divider, image, actions)."""
    if not isinstance(block, dict):
        return ""
    kind = block.get("type")
    parts: list[str] = []
    if kind == "header":
        parts.append(f"*{_text_object(block.get('text'))}*")
    elif kind == "rich_text":
        parts.append(_rich_text(block.get("elements")))
    elif kind == "context":
        parts += [_text_object(e) for e in block.get("elements") or [] if isinstance(e, dict)
                  and e.get("type") in ("mrkdwn", "plain_text")]
    else:  # section and anything else with text or fields
        parts.append(_text_object(block.get("text")))
        parts += [_text_object(f) for f in block.get("fields") or []]
    return "\n".join(part for part in parts if part.strip())


def attachment_text(attachment: Any) -> str:
    """One legacy attachment: pretext, title (linked), text and fields; else its fallback."""
    if not isinstance(attachment, dict):
        return ""
    parts = [_string(attachment.get("pretext"))]
    title, link = _string(attachment.get("title")), _string(attachment.get("title_link"))
    parts.append(f"*<{link}|{title}>*" if title and link else f"*{title}*" if title else "")
    parts.append(_string(attachment.get("text")))
    for field in attachment.get("fields") or []:
        if isinstance(field, dict):
            name, value = _string(field.get("title")), _string(field.get("value"))
            parts.append(f"*{name}*: {value}" if name else value)
    parts += [block_text(block) for block in attachment.get("blocks") or []]
    shown = [part for part in parts if part]
    if not shown:
        shown = [_string(attachment.get("fallback"))]
    return "\n".join(part for part in shown if part)


def payload_text(payload: dict[str, Any]) -> str:
    """The message a payload posts, as our Markdown; PayloadError if it shows nothing."""
    for name in ("text", "username", "icon_url"):
        value = payload.get(name)
        if value is not None and not isinstance(value, str):
            raise PayloadError(f"the field {name!r} must be a string")
    for name in ("attachments", "blocks"):
        value = payload.get(name)
        if value is not None and not isinstance(value, list):
            raise PayloadError(f"the field {name!r} must be an array")
    blocks = [block_text(block) for block in payload.get("blocks") or []]
    parts = blocks if any(blocks) else [_string(payload.get("text"))]
    parts += [attachment_text(a) for a in payload.get("attachments") or []]
    text = "\n".join(part for part in parts if part)
    if not text:
        raise PayloadError("the payload has no text: give `text`, `attachments` or `blocks` "
                           "(Slack refuses it as no_text)")
    return mrkdwn(text)
