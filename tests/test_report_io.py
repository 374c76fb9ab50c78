"""Result-file reading (errors name the file and column), T1/T2 rendering, and the output check."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from test_report_synthetic import write_results

from hera.report import check, io, tables


def one_line(exc: pytest.ExceptionInfo) -> str:
    msg = str(exc.value)
    assert "\n" not in msg
    return msg


def test_missing_file(tmp_path):
    with pytest.raises(io.ResultError) as exc:
        io.read_table(tmp_path, "profile/latency.csv")
    assert f"result file {tmp_path / 'profile/latency.csv'} does not exist" == one_line(exc)


def test_missing_column_is_named(tmp_path):
    results = write_results(tmp_path, only=["policy/emu.csv"])
    path = results / "policy/emu.csv"
    pd.read_csv(path).drop(columns=["emu", "node"]).to_csv(path, index=False)
    with pytest.raises(io.ResultError) as exc:
        io.read_table(results, "policy/emu.csv")
    assert "emu.csv lacks column(s) node, emu" in one_line(exc)


def test_non_numeric_and_empty_tables(tmp_path):
    results = write_results(tmp_path, only=["cluster/servers.csv", "serving/moves.csv"])
    path = results / "cluster/servers.csv"
    pd.read_csv(path).assign(servers="many").to_csv(path, index=False)
    with pytest.raises(io.ResultError, match="column 'servers' is not numeric"):
        io.read_table(results, "cluster/servers.csv")
    pd.read_csv(path).head(0).to_csv(path, index=False)
    with pytest.raises(io.ResultError, match="has no rows"):
        io.read_table(results, "cluster/servers.csv")
    path.write_text("")
    with pytest.raises(io.ResultError, match="is empty"):
        io.read_table(results, "cluster/servers.csv")
    moves = results / "serving/moves.csv"
    pd.read_csv(moves).head(0).to_csv(moves, index=False)
    assert io.read_table(results, "serving/moves.csv").df.empty  # no move is a valid result


def test_provenance_sidecar_is_carried_and_checked(tmp_path):
    results = write_results(tmp_path / "x" / "ci", only=["policy/emu.csv"])
    t = io.read_table(results, "policy/emu.csv")
    assert t.meta["git_commit"] == "0123456789abcdef" and t.machine.usable_cores == 16
    assert t.machine.summary() == ("Synthetic Xeon 8380, 16 usable cores, LLC 32 MiB 11-way, "
                                   "LLC partitioning available")
    io.sidecar(results / "policy/emu.csv").write_text("{not json")
    with pytest.raises(io.ResultError, match="emu.csv.meta.json is not valid JSON"):
        io.read_table(results, "policy/emu.csv")
    io.sidecar(results / "policy/emu.csv").unlink()
    t = io.read_table(results, "policy/emu.csv")
    assert t.meta == {} and not t.machine.known and t.scale == "ci"  # scale from the directory name


def test_unknown_table_and_bool_parsing(tmp_path):
    with pytest.raises(io.ResultError, match="unknown result table 'x.csv'"):
        io.read_table(tmp_path, "x.csv")
    flags = io.as_bool(pd.Series(["True", "false", "1", "0", "yes"])).tolist()
    assert flags == [True, False, True, False, True]


def test_markdown_rendering():
    df = pd.DataFrame({"a": ["x|y", None], "n": [4.1e9, 0.123456], "i": [12, 3]})
    md = tables.markdown_table(df)
    assert md.splitlines()[0] == "| a | n | i |" and "x\\|y" in md and "4.1 G" in md and "0.123" in md
    assert tables.fmt(float("nan")) == "-" and tables.fmt(25_000) == "25 k"


def test_t2_and_t1_markdown_are_written(tmp_path):
    results = write_results(tmp_path / "results" / "ci")
    out = results / "tables"
    paths = tables.write_t2(results, out)
    assert [p.name for p in paths] == ["T2.csv", "T2.md", "T1.md"]
    t2 = pd.read_csv(out / "T2.csv")
    assert {"claim", "statement", "paper", "ours", "verdict", "reason", "machine"} <= set(t2.columns)
    assert t2["claim"].tolist() == ["C1", "C2", "C3", "C4", "C5", "M", "P"]
    meta = json.loads((out / "T2.csv.meta.json").read_text())
    assert meta["config"]["thresholds"]["MIN_CORES_FOR_COLOCATION"] == 4 and meta["config"]["scale"] == "ci"
    md = (out / "T2.md").read_text()
    assert "| C3 | Hera raises EMU" in md and "Machine: Synthetic Xeon 8380" in md
    assert "| dlrm_rmc1 |" in (out / "T1.md").read_text()
    (out / "T1.md").write_text("kept")
    assert [p.name for p in tables.write_t2(results, out)] == ["T2.csv", "T2.md"]
    assert (out / "T1.md").read_text() == "kept"  # an existing T1.md is never overwritten


def fake_outputs(results, figures):
    for p in check.expected(results, figures):
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes({".png": b"\x89PNG\r\n\x1a\nxx", ".pdf": b"%PDF-1.4"}.get(p.suffix, b"a,b\n1,2\n"))


def test_check_detects_missing_empty_and_bogus_files(tmp_path, capsys):
    results, figs = tmp_path / "results" / "ci", tmp_path / "figures" / "ci"
    fake_outputs(results, figs)
    argv = ["--scale", "ci", "--results", str(results), "--figures", str(figs)]
    assert check.main(argv) == 0
    (figs / "F3.png").unlink()
    (results / "tables" / "T2.md").write_text("")
    (figs / "F5.pdf").write_bytes(b"<html>")
    assert check.main(argv) == 1
    out = capsys.readouterr().out
    assert "3 of 22 outputs missing or unusable" in out
    assert f"{figs / 'F3.png'}: missing" in out and "T2.md: empty" in out and "F5.pdf: not a PDF file" in out


def test_note_parts_split_outside_parentheses_only():
    text = "early stopping at 99% (binomial; latencies are correlated); no resctrl; x (a (b; c); d)"
    assert io.split_note(text) == ["early stopping at 99% (binomial; latencies are correlated)", "no resctrl",
                                   "x (a (b; c); d)"]
    assert io.split_note("one") == ["one"]
