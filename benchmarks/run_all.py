"""Run every benchmark script (benchmarks/<area>/bench_*.py) at its default, laptop-sized scale.

Each script prints its own throughput and ratio against its baseline; pass the issue's full
scale to a script directly, e.g. `python benchmarks/segments/bench_segments.py --members 10000000`.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main() -> int:
    failures = 0
    for script in sorted(HERE.glob("*/bench_*.py")):
        print(f"\n=== {script.relative_to(HERE)} ===", flush=True)
        result = subprocess.run([sys.executable, str(script)], check=False)
        failures += result.returncode != 0
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
