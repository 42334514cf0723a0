"""Console pages: one module per domain, each exposing a FastAPI `router`."""
