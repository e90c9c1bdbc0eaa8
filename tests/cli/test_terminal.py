"""Text from a queue on a terminal: escaped where it could steer it, exact in JSON."""

from __future__ import annotations

import json

import pytest

from resumectl.terminal import printable, safe_json


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ('plain ascii, quotes " and \\ kept', 'plain ascii, quotes " and \\ kept'),
        ("申诉 granted ✓", "申诉 granted ✓"),  # printable non-ASCII stays readable
        ("a\nb\tc\rd", "a\\nb\\tc\\rd"),
        ("\x1b[31mred\x1b[0m", "\\x1b[31mred\\x1b[0m"),
        ("\x9b2J", "\\x9b2J"),  # the 8-bit CSI
        ("\u202etxt", "\\u202etxt"),  # right-to-left override
        ("\u2028", "\\u2028"),  # line separator
        ("tag\U000e0041", "tag\\U000e0041"),  # an invisible tag character
        ("\x00", "\\x00"),
    ],
)
def test_printable_escapes_exactly_the_characters_that_are_not(text: str, shown: str) -> None:
    assert printable(text) == shown


def test_safe_json_is_exact_json_with_nothing_unprintable() -> None:
    value = {"body": "x\x1b[2J\x9b\u202e\U000e0041\n申诉", "n": [1, None]}
    text = safe_json(value)
    assert all(char.isprintable() or char == "\n" for char in text)
    assert json.loads(text) == value
    assert "申诉" in text
