"""The import-linter contracts of pyproject.toml: layers without back-arrows and no import circles.

grimp (import-linter's graph) counts imports inside functions too, so a lazy import cannot hide a back-arrow.
The second test proves the contracts bite: a copy of the package with one back-arrow (inside a function) and
one import circle must break both.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from hera.paths import repo_root

LINT = Path(sys.executable).with_name("lint-imports")


def lint(root: Path, config: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(root))
    return subprocess.run([str(LINT), "--config", str(config), "--no-cache"], cwd=root, env=env,
                          capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module", autouse=True)
def _lint_imports_installed():
    if not LINT.is_file():
        pytest.fail(f"lint-imports not found beside {sys.executable}: install the test extras (import-linter)")


def test_contracts_hold():
    res = lint(repo_root(), repo_root() / "pyproject.toml")
    assert res.returncode == 0, res.stdout + res.stderr
    assert "2 kept, 0 broken" in res.stdout


def test_contracts_catch_a_back_arrow_inside_a_function_and_a_circle(tmp_path):
    shutil.copytree(repo_root() / "hera", tmp_path / "hera", ignore=shutil.ignore_patterns("__pycache__"))
    moves = tmp_path / "hera" / "control" / "moves.py"
    moves.write_text(moves.read_text() + "\n\ndef _back_arrow():\n    from hera.policy import Profiles\n\n"
                     "    return Profiles\n")
    layout = tmp_path / "hera" / "zoo" / "layout.py"
    layout.write_text(layout.read_text() + "\n\ndef _circle():\n    from hera.zoo import build\n\n    return build\n")
    res = lint(tmp_path, repo_root() / "pyproject.toml")
    out = res.stdout + res.stderr
    assert res.returncode != 0, out
    assert "hera layers: imports only go downwards BROKEN" in out and "hera.control.moves -> hera.policy" in out
    assert "no import circles between the modules of any package BROKEN" in out
