"""Console pages, one module per domain; each exposes `router` and optionally `nav`."""
