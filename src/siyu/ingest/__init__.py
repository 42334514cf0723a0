"""Ingest: import of members, orders and events from files and the API — validation, dead letters,
idempotent batch writes, and the warehouse sync that follows every import."""
