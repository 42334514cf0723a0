"""Console: the server-rendered web UI (Jinja2), a thin adapter over the domain services."""
