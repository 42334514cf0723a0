"""HTTP API (FastAPI): thin routers over the domain services, one module per domain."""
