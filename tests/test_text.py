"""Message text: emoji shortcodes expand as the emoji package would, in one pass."""

from __future__ import annotations

import emoji
import pytest

from chat.protocol.text import expand_shortcodes

SAMPLES = [
    "ok :robot: :+1: :thumbsup: :not_an_emoji:",
    ":+1::+1:",
    ":a:b:",  # `:a:` then `b:`: the colon it ends with is not the start of another code
    ":::+1:::",
    "::",
    ":",
    "no codes at all",
    ":thumbs_up: :red_heart: :flag_england: :family_man_woman_girl_boy:",
    ":ＲＯＢＯＴ:",  # fullwidth: emojize normalizes (NFKC) before looking up
    ":+1",
    "time 10:30: ok :smile:",
    ":’: :x: :100: :1st_place_medal:",
    "été :café: :ok_hand_medium_skin_tone:",
]


@pytest.mark.parametrize("text", SAMPLES)
def test_shortcodes_expand_as_emojize_does(text: str) -> None:
    """Known codes become their emoji, unknown ones stay, exactly as emoji.emojize does."""
    assert expand_shortcodes(text) == emoji.emojize(text, language="alias")


def test_every_alias_and_name_expands_as_emojize_does() -> None:
    """Each code the emoji package knows (a sample of every 7th) expands to the same emoji."""
    codes = sorted({name for data in emoji.EMOJI_DATA.values()
                    for name in (data["en"], *data.get("alias", ()))})
    for code in codes[::7]:
        assert expand_shortcodes(code) == emoji.emojize(code, language="alias"), code


def test_a_long_run_of_codes_expands_every_one() -> None:
    """A thousand :+1: in a row become a thousand thumbs."""
    assert expand_shortcodes(":+1:" * 1000) == "👍" * 1000
