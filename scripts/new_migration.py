"""Autogenerate the next migration of one domain branch.

    .venv/bin/python scripts/new_migration.py loyalty "coupons and points ledger"

Upgrades a scratch SQLite database to every head, then diffs the models against it. Review the
file it writes: it contains every table not yet migrated, whoever owns it.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from alembic import command
from alembic.script import ScriptDirectory

from siyu.migrations.runner import alembic_config, upgrade


def main(domain: str, message: str) -> None:
    with tempfile.TemporaryDirectory() as scratch:
        url = f"sqlite:///{Path(scratch) / 'scratch.db'}"
        upgrade(url)
        config = alembic_config(url)
        script = ScriptDirectory.from_config(config)
        existing = [r for r in script.walk_revisions() if r.revision.startswith(f"{domain}_")]
        number = len(existing) + 1
        rev_id = f"{domain}_{number:04d}"
        if existing:
            command.revision(config, message, autogenerate=True, rev_id=rev_id, head=f"{domain}@head")
        else:
            command.revision(
                config, message, autogenerate=True, rev_id=rev_id, head="base",
                branch_label=domain, depends_on="core_0001",
            )


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
