"""`siyu generate` throughput and memory as the brand grows (issue #2: 10M members + 50M order
lines "in minutes and constant memory").

    .venv/bin/python benchmarks/generate/bench_generate.py [--members 20000,100000]
        [--format csv] [--out /tmp/siyu-bench-generate]

Each size runs in a forked child so its peak RSS (ru_maxrss from wait4) is its own. Members are
generated in chunks of 50,000, so peak RSS should rise up to one chunk and then stay flat; the
printed extrapolation to 10M members assumes the measured rows/s of the largest size holds
(generation is CPU-bound and single-threaded; each chunk costs the same).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from siyu.generate import GenerateRequest, generate


def measured(work: Callable[[], dict[str, Any]]) -> tuple[dict[str, Any], float, float]:
    """Run `work` in a forked child: (its JSON result, wall seconds, peak RSS in MiB)."""
    read_end, write_end = os.pipe()
    started = time.perf_counter()
    pid = os.fork()
    if pid == 0:  # child
        os.close(read_end)
        payload = json.dumps(work()).encode()
        with os.fdopen(write_end, "wb") as pipe:
            pipe.write(payload)
        os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as pipe:
        result = json.loads(pipe.read() or b"{}")
    _, status, usage = os.wait4(pid, 0)
    if status != 0:
        raise SystemExit(f"child failed with status {status}")
    return result, time.perf_counter() - started, usage.ru_maxrss / 1024


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", default="20000,100000", help="comma-separated sizes")
    parser.add_argument("--format", default="csv", choices=("csv", "ndjson", "parquet"))
    parser.add_argument("--out", type=Path, default=Path("/tmp/siyu-bench-generate"))
    parser.add_argument("--keep", action="store_true", help="keep the generated files")
    args = parser.parse_args()
    sizes = [int(s) for s in args.members.split(",")]
    print(f"siyu generate, format {args.format}, one process per size (pid {os.getpid()})")
    print(f"{'members':>11} {'order lines':>12} {'events':>10} {'seconds':>8} "
          f"{'rows/s':>10} {'peak RSS MiB':>13}")  # fmt: skip
    last: tuple[int, float] | None = None
    for size in sizes:
        folder = args.out / f"m{size}"
        shutil.rmtree(folder, ignore_errors=True)
        request = GenerateRequest(members=size, format=args.format)
        manifest, seconds, rss = measured(lambda r=request, f=folder: generate(f, r))
        counts = manifest["counts"]
        rows = counts["members"] + counts["order_lines"] + counts["events"]
        print(f"{size:>11,} {counts['order_lines']:>12,} {counts['events']:>10,} {seconds:>8.1f} "
              f"{rows / seconds:>10,.0f} {rss:>13,.0f}")  # fmt: skip
        last = (rows, seconds)
        if not args.keep:
            shutil.rmtree(folder, ignore_errors=True)
    if last is not None:
        rows, seconds = last
        per_member = rows / sizes[-1]
        target = 10_000_000 * per_member / (rows / seconds)
        print(f"extrapolated 10M members (~{10_000_000 * per_member / 1e6:.0f}M rows) at the "
              f"last rate: {target / 60:.1f} min on this machine")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
