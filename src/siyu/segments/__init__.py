"""Segments (圈人): the JSON DSL, its compiler to warehouse SQL, saved segments and snapshots."""
