"""The journeys shipped with siyu (the four of issue #5), as YAML an operator can apply or copy."""

from __future__ import annotations

from importlib import resources


def names() -> list[str]:
    return sorted(
        p.name.removesuffix(".yaml")
        for p in resources.files(__name__).iterdir()
        if p.name.endswith(".yaml")
    )


def read(name: str) -> str:
    """The YAML text of a shipped template (`new-member-sop`, `product-launch`, …)."""
    return resources.files(__name__).joinpath(f"{name}.yaml").read_text(encoding="utf-8")
