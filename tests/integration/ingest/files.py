"""Write the same rows as CSV, NDJSON or Parquet (the three import formats)."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq


def write_rows(path: Path, rows: list[dict[str, Any]]) -> Path:
    columns = list(dict.fromkeys(name for row in rows for name in row))
    if path.suffix == ".csv":
        with path.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=columns)
            writer.writeheader()
            for row in rows:
                writer.writerow(
                    {k: json.dumps(v) if isinstance(v, dict) else v for k, v in row.items()}
                )
    elif path.suffix == ".ndjson":
        path.write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows))
    else:
        table = pa.table(
            {
                c: [json.dumps(r[c]) if isinstance(r.get(c), dict) else r.get(c) for r in rows]
                for c in columns
            }
        )
        pq.write_table(table, path)
    return path


MEMBERS = [
    {
        "member_no": "M001",
        "phone": "138 0013 8000",
        "unionid": "",
        "name": "Wang Fang",
        "gender": "F",
        "birthday": "1990-05-01",
        "registered_at": "2025-01-02T10:00:00",
        "store_code": "SH001",
        "channel": "pos",
    },
    {
        "member_no": "M002",
        "phone": "+86 138-0013-8000",
        "unionid": "oU1",
        "name": "Wang Fang",
        "gender": "F",
        "birthday": "",
        "registered_at": "2025-03-01 09:00:00",
        "store_code": "",
        "channel": "miniprogram",
    },
    {
        "member_no": "M003",
        "phone": "12345",
        "unionid": "",
        "name": "Li Lei",
        "gender": "M",
        "birthday": "",
        "registered_at": "2025-03-01",
        "store_code": "SH001",
        "channel": "pos",
    },
    {
        "member_no": "M004",
        "phone": "13900139000",
        "unionid": "",
        "name": "Zhao Min",
        "gender": "X",
        "birthday": "",
        "registered_at": "",
        "store_code": "SH001",
        "channel": "pos",
    },
    {
        "member_no": "",
        "phone": "bad",
        "unionid": "",
        "name": "Nobody",
        "gender": "U",
        "birthday": "",
        "registered_at": "",
        "store_code": "",
        "channel": "",
    },
]
ORDERS = [
    {
        "order_id": "O1",
        "line_no": "1",
        "member_no": "M001",
        "phone": "",
        "unionid": "",
        "store_code": "SH001",
        "channel": "pos",
        "paid_at": "2026-06-01T12:00:00",
        "amount": "39.00",
        "status": "paid",
        "category": "tea",
        "sku": "T1",
    },
    {
        "order_id": "O1",
        "line_no": "2",
        "member_no": "M001",
        "phone": "",
        "unionid": "",
        "store_code": "SH001",
        "channel": "pos",
        "paid_at": "2026-06-01T12:00:00",
        "amount": "10.50",
        "status": "paid",
        "category": "snack",
        "sku": "S1",
    },
    {
        "order_id": "O2",
        "line_no": "1",
        "member_no": "",
        "phone": "",
        "unionid": "oU1",
        "store_code": "SH002",
        "channel": "miniprogram",
        "paid_at": "2026-06-02T12:00:00",
        "amount": "20",
        "status": "refunded",
        "category": "tea",
        "sku": "T1",
    },
    {
        "order_id": "O3",
        "line_no": "1",
        "member_no": "",
        "phone": "13700137000",
        "unionid": "",
        "store_code": "SH002",
        "channel": "pos",
        "paid_at": "2026-06-03T12:00:00",
        "amount": "-1",
        "status": "paid",
        "category": "tea",
        "sku": "T1",
    },
]
