"""Phone normalisation (DESIGN §4.2): one canonical mainland mobile number per person."""

from __future__ import annotations

import re

MOBILE = re.compile(r"^1[3-9]\d{9}$")
_SEPARATORS = re.compile(r"[\s\-()（）]")
# Longest prefix first: "0086" must not be read as "0" + "086…".
_COUNTRY_PREFIXES = ("+86", "0086", "86")


def normalize_phone(raw: str | None) -> str | None:
    """The 11-digit mobile number, or None when the value is empty or not a valid mobile."""
    if raw is None:
        return None
    value = _SEPARATORS.sub("", str(raw))
    if not value:
        return None
    for prefix in _COUNTRY_PREFIXES:
        # Only strip "86" when what follows would be a full 11-digit number.
        if value.startswith(prefix) and len(value) - len(prefix) == 11:
            value = value[len(prefix) :]
            break
    return value if MOBILE.match(value) else None
