"""The demo brand "Demo Tea": one call that runs the whole pipeline on any storage.

`build_demo` generates a seeded brand, imports it, syncs the warehouse and then lets every
capability leave something to look at (users, tags, segments, coupons, journeys, WeCom,
guide tasks), so that `make demo` shows each feature working in the console. It composes
domain services only; the CLI (`siyu demo`) adds the progress display and the server.
"""
