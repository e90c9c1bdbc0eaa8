"""Text from a queue, shown on a terminal: nothing in a message can steer the terminal.

A dead letter's body and attributes are whatever a producer (or an attacker) sent. Written as they
are, an ESC or CSI sequence would move the cursor, rewrite earlier lines, set the window title or
worse; a bidi override would reorder what is read. Every character that is not printable is shown
as an escape instead: \\n, \\r, \\t, \\xNN (a control character) or \\uNNNN / \\UNNNNNNNN (format,
separator, private-use and unassigned characters). The JSON output stays exact: there the same
characters are written as JSON's own \\uNNNN escapes.
"""

from __future__ import annotations

import json
import re
from typing import Any

_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}
# Every character str.isprintable() refuses, except the plain space, which it accepts anyway.
_UNSAFE = re.compile(r"[^\x20-\x7e]")


def printable(text: str) -> str:
    """`text` with every non-printable character escaped; printable text is unchanged."""
    return _UNSAFE.sub(_escape_if_unprintable, text)


def _escape_if_unprintable(match: re.Match[str]) -> str:
    char = match.group()
    if char.isprintable():
        return char
    if char in _NAMED:
        return _NAMED[char]
    code = ord(char)
    if code <= 0xFF:
        return f"\\x{code:02x}"
    if code <= 0xFFFF:
        return f"\\u{code:04x}"
    return f"\\U{code:08x}"


def safe_json(value: Any) -> str:
    """JSON for stdout: non-ASCII text stays readable, but no character that is not printable
    reaches the terminal raw (json.dumps escapes only U+0000..U+001F by itself)."""
    text = json.dumps(value, indent=2, ensure_ascii=False)
    return _UNSAFE.sub(_json_escape_if_unprintable, text)


def _json_escape_if_unprintable(match: re.Match[str]) -> str:
    char = match.group()
    if char.isprintable() or char == "\n":  # json.dumps escapes a newline in a string: this is layout
        return char
    code = ord(char)
    if code <= 0xFFFF:
        return f"\\u{code:04x}"
    code -= 0x10000  # outside the BMP: a UTF-16 surrogate pair, as JSON spells it
    return f"\\u{0xD800 + (code >> 10):04x}\\u{0xDC00 + (code & 0x3FF):04x}"
