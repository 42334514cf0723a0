"""The console's navigation: fixed sections, filled by the entries page modules declare."""

from __future__ import annotations

from dataclasses import dataclass, field

from siyu.access.schemas import Role

# The order of the top navigation. A section shows only when some page declares an entry in it.
SECTIONS = (
    "Overview",
    "Members",
    "Segments",
    "Journeys",
    "Loyalty",
    "Reports",
    "WeCom",
    "Staff",
)


@dataclass(frozen=True)
class NavEntry:
    """A link in the console navigation; `roles` empty means every signed-in user sees it."""

    section: str
    label: str
    path: str
    roles: frozenset[Role] = field(default_factory=frozenset)
    order: int = 100

    def __post_init__(self) -> None:
        if self.section not in SECTIONS:
            raise ValueError(f"nav section {self.section!r} is not one of {', '.join(SECTIONS)}")
        if not self.path.startswith("/console"):
            raise ValueError(f"nav path {self.path!r} must start with /console")


@dataclass(frozen=True)
class NavSection:
    name: str
    path: str
    entries: tuple[NavEntry, ...]


def build_nav(entries: list[NavEntry], *, role: Role) -> list[NavSection]:
    """The sections this role may see, each linking to its first entry."""
    sections = []
    for name in SECTIONS:
        visible = sorted(
            (e for e in entries if e.section == name and (not e.roles or role in e.roles)),
            key=lambda e: (e.order, e.label),
        )
        if visible:
            sections.append(NavSection(name=name, path=visible[0].path, entries=tuple(visible)))
    return sections
