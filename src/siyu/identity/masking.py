"""How personal values are shown where the full value is not needed (lists, guides' screens)."""

from __future__ import annotations


def mask_phone(phone: str | None) -> str:
    """13812345678 → 138****5678; anything that is not an 11-digit mobile is masked whole."""
    if not phone:
        return ""
    if len(phone) == 11 and phone.isdigit():
        return f"{phone[:3]}****{phone[7:]}"
    return "*" * len(phone)
