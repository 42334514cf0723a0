"""Warehouse: the bulk-read copy of orders, events, members and tags (DuckDB embedded,
ClickHouse to scale out), its schema and the incremental, restartable sync that fills it."""
