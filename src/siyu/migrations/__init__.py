"""Alembic migrations. Each domain has its own branch (label = domain name) so domains evolve
independently; `upgrade heads` applies them all. Run through `siyu.migrations.runner`."""
