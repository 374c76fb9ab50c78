"""The report layer is a pure function of result files: it never imports torch or the layers below it
that run models (zoo, server, load generator, profiler)."""

from __future__ import annotations

import subprocess
import sys

import pytest

pytestmark = pytest.mark.slow  # a fresh interpreter imports the whole report layer

FORBIDDEN = ("torch", "torchrec", "fbgemm_gpu", "hera.zoo", "hera.server", "hera.loadgen", "hera.profile")

CODE = """
import sys
from pathlib import Path
import hera.report, hera.report.io, hera.report.style, hera.report.figures, hera.report.claims
import hera.report.tables, hera.report.check, hera.report.cli
sys.path.insert(0, {tests!r})
from test_report_synthetic import write_results
results = write_results(Path({tmp!r}) / "ci", only=["cluster/servers.csv"])
hera.report.figures.build("F8", results, Path({tmp!r}) / "fig")
forbidden = {forbidden!r}
bad = sorted(m for m in sys.modules if any(m == f or m.startswith(f + ".") for f in forbidden))
print("FORBIDDEN:", bad)
sys.exit(1 if bad else 0)
"""


def test_report_imports_no_torch_zoo_server_loadgen_or_profiler(tmp_path):
    from pathlib import Path

    code = CODE.format(tests=str(Path(__file__).parent), tmp=str(tmp_path), forbidden=FORBIDDEN)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert (tmp_path / "fig" / "F8.png").is_file()
