"""The `siyu` command line: a thin adapter over the domain services (one module per domain)."""
