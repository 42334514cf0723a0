"""`siyu generate`: a deterministic, seeded brand ("Demo Tea") in the import formats of DESIGN §4.2.

Public surface: `generate(out_dir, GenerateRequest(...))` for any size (streams in chunks, flat
memory) and `generate_brand(out_dir, members=2000, seed=7)`, the demo's small preset. Both
return the manifest written to `manifest.json`. Pure Python + numpy + pyarrow; no domain code.
"""

from __future__ import annotations

from siyu.generate.brand import (
    DEFAULT_END,
    DEFAULT_START,
    GenerateRequest,
    generate,
    generate_brand,
)
from siyu.generate.errors import GenerateError, GenerateErrorCode
from siyu.generate.sinks import FORMATS

__all__ = [
    "DEFAULT_END",
    "DEFAULT_START",
    "FORMATS",
    "GenerateError",
    "GenerateErrorCode",
    "GenerateRequest",
    "generate",
    "generate_brand",
]
