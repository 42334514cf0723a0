"""The architecture rules hold: domains import no web framework, CLI, console or DB driver."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]


def test_domain_packages_keep_their_import_contracts() -> None:
    lint_imports = Path(sys.executable).parent / "lint-imports"

    result = subprocess.run(
        [str(lint_imports), "--config", str(ROOT / "pyproject.toml")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )

    assert result.returncode == 0, result.stdout + result.stderr


def test_importing_siyu_builds_nothing(tmp_path: Path) -> None:
    # Nothing happens at import time: importing every module must not create files or engines.
    code = "import siyu.bootstrap, siyu.api.app, siyu.cli.main; print('ok')"

    result = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, check=False
    )

    assert result.stdout.strip() == "ok", result.stderr
    assert list(tmp_path.iterdir()) == []
