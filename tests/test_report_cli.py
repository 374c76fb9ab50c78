"""``hera report figure|all|t2`` and ``python -m hera.report.check`` from the command line."""

from __future__ import annotations

import pytest

import json
import subprocess
import sys

from test_report_synthetic import write_results

from hera.cli import main


def last_json(capsys) -> dict:
    return json.loads(capsys.readouterr().out.strip().splitlines()[-1])


@pytest.mark.slow
def test_report_figure(tmp_path, capsys):
    results = write_results(tmp_path / "results" / "ci", only=["cluster/servers.csv"])
    assert main(["report", "figure", "f8", "--results", str(results), "--out", str(tmp_path / "fig")]) == 0
    out = last_json(capsys)
    assert out["figure"] == "F8"
    assert all((tmp_path / "fig" / f"F8.{e}").stat().st_size > 0 for e in ("pdf", "png"))


def test_report_figure_errors_are_one_line(tmp_path, capsys):
    assert main(["report", "figure", "F10", "--results", str(tmp_path), "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err == "hera: error: unknown figure 'F10'; known: F1, F2, F3, F4, F5, F6, F7, F8, F9\n"
    assert main(["report", "figure", "F1", "--results", str(tmp_path), "--out", str(tmp_path)]) == 2
    assert "profile/latency.csv does not exist" in capsys.readouterr().err


@pytest.mark.slow
def test_report_all_builds_what_it_can_and_lists_the_rest(tmp_path, capsys):
    results = write_results(tmp_path / "results" / "ci", only=["profile/latency.csv", "tables/T1.csv"])
    assert main(["report", "all", "--results", str(results), "--out", str(tmp_path / "fig")]) == 0
    out = last_json(capsys)
    assert set(out["built"]) == {"F1", "T1"} and out["failed"] == {}
    assert set(out["skipped"]) == {"F2", "F3", "F4", "F5", "F6", "F7", "F8", "F9", "T2"}
    assert out["skipped"]["F7"] == "missing serving/load_change.csv, serving/moves.csv"
    assert (results / "tables" / "T1.md").is_file()


def test_report_t2(tmp_path, capsys):
    results = write_results(tmp_path / "results" / "ci")
    assert main(["report", "t2", "--results", str(results), "--out", str(tmp_path / "tables")]) == 0
    assert [p.rsplit("/", 1)[1] for p in last_json(capsys)["files"]] == ["T2.csv", "T2.md", "T1.md"]


def test_check_module_exit_status(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "hera.report.check", "--scale", "ci", "--results",
                           str(tmp_path / "r"), "--figures", str(tmp_path / "f")],
                          capture_output=True, text=True)
    assert proc.returncode == 1
    assert "22 of 22 outputs missing" in proc.stdout and "F1.pdf: missing" in proc.stdout
