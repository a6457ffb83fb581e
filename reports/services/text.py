# SPDX-License-Identifier: AGPL-3.0-or-later
"""Free text from citizens: trimmed, bounded, and refused when it carries markup or scripts.

Pages escape everything anyway; refusing markup at the door also keeps it
out of exports, tiles and other systems that read the reports layer.
"""
from __future__ import annotations

import re
import unicodedata

from reports.services.errors import UnsafeText
from twin.errors import InvalidInput

_MARKUP = re.compile(r"<\s*/?\s*[a-zA-Z!?]|javascript\s*:|\bon[a-z]+\s*=|&#", re.IGNORECASE)


def clean_text(value: str | None, *, field: str, max_length: int, required: bool = False) -> str:
    """Normalise (NFC), drop control characters, check length and markup.

    >>> clean_text("  Rác  ở hẻm 5 ", field="description", max_length=100)
    'Rác  ở hẻm 5'
    >>> clean_text("<script>alert(1)</script>", field="description", max_length=100)
    Traceback (most recent call last):
    ...
    reports.services.errors.UnsafeText: description: HTML tags and scripts are not allowed / không được chứa mã HTML, script
    """
    text = unicodedata.normalize("NFC", value or "")
    text = "".join(ch for ch in text if ch in "\n\t" or unicodedata.category(ch)[0] != "C").strip()
    if required and not text:
        raise InvalidInput(f"{field} is required / {field} là bắt buộc")
    if len(text) > max_length:
        raise InvalidInput(f"{field} is longer than {max_length} characters")
    if _MARKUP.search(text):
        raise UnsafeText(f"{field}: HTML tags and scripts are not allowed / không được chứa mã HTML, script")
    return text
