"""How personal values are shown where the full value is not needed (lists, guides' screens)."""

from __future__ import annotations


def mask_phone(phone: str | None) -> str:
    """13812345678 → 138****5678; anything that is not an 11-digit mobile is masked whole."""
    if not phone:
        return ""
    if "****" in phone:
        return phone  # already masked by the service layer for this viewer
    if len(phone) == 11 and phone.isdigit():
        return f"{phone[:3]}****{phone[7:]}"
    return "*" * len(phone)


def mask_name(name: str | None) -> str | None:
    """王芳 → 王*, Wang Fang → W********: the first character only."""
    return None if not name else name[0] + "*" * (len(name) - 1)
