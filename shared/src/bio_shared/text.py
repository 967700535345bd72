"""Names typed by people (persons, events, images): one normal form and one set of refusals."""

from __future__ import annotations

import unicodedata

from bio_shared.errors import InvalidName

# Bidirectional embeddings/overrides and isolates: they reorder what a reader sees around them.
BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def clean_name(value: str, *, field: str, max_len: int = 200) -> str:
    """NFC-normalised and stripped; refuses empty, over-long, control (Cc), surrogate and bidirectional
    control characters with ``InvalidName`` (422, code ``invalid_name``)."""
    if not isinstance(value, str):
        raise InvalidName(f"{field} must be a string", details={"field": field, "reason": "not_a_string"})
    name = unicodedata.normalize("NFC", value).strip()
    if not name:
        raise InvalidName(f"{field} must not be empty", details={"field": field, "reason": "empty"})
    if len(name) > max_len:
        raise InvalidName(f"{field} is {len(name)} characters; the limit is {max_len}",
                          details={"field": field, "reason": "too_long", "limit": max_len})
    for i, ch in enumerate(name):
        category = unicodedata.category(ch)
        if category in ("Cc", "Cs") or ch in BIDI_CONTROLS:
            raise InvalidName(f"{field} contains the character U+{ord(ch):04X}, which is not allowed",
                              details={"field": field, "reason": "forbidden_character", "index": i,
                                       "codepoint": f"U+{ord(ch):04X}"})
    return name
