"""Who is looking: the `Viewer` every scoped domain read and write takes.

Roles and what they may see (issue #8):
- hq: everything; analyst: everything, read-only and with personal values masked;
- supervisor: the stores of their region and the members owned by those stores;
- guide: their own members (owner guide) and their own tasks.
Scoping is decided in the domain services that take a Viewer, so the API, CLI and console
cannot disagree. The CLI runs as the operator of the machine: `Viewer.system()` (hq).
"""

from __future__ import annotations

from dataclasses import dataclass

from siyu.access.schemas import Role


@dataclass(frozen=True)
class Viewer:
    role: Role
    actor: str
    staff_id: int | None = None
    region: str | None = None

    @classmethod
    def system(cls, actor: str = "system") -> Viewer:
        return cls(role=Role.HQ, actor=actor)

    @property
    def sees_everything(self) -> bool:
        return self.role in (Role.HQ, Role.ANALYST)

    @property
    def may_write(self) -> bool:
        return self.role != Role.ANALYST

    @property
    def sees_full_pii(self) -> bool:
        """Full phones and names without a reveal: only HQ (a guide sees their own members')."""
        return self.role == Role.HQ
