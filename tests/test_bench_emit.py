"""`hera bench` output: a folder as --out gets <name>.json; an unwritable path still prints the figure."""
import json

from hera import bench


def test_out_folder_gets_the_bench_name(tmp_path, capsys):
    assert bench._emit("qps-repeatability", "ci", {"cov": 0.05}, tmp_path, {}) == 0
    assert json.loads((tmp_path / "qps-repeatability.json").read_text())["figure"] == {"cov": 0.05}
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1]) == {"cov": 0.05}


def test_unwritable_out_prints_the_figure_and_fails(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert bench._emit("serving", "ci", {"efficiency": 0.9}, blocker / "sub" / "out.json", {}) == 1
    cap = capsys.readouterr()
    assert json.loads(cap.out.strip().splitlines()[-1]) == {"efficiency": 0.9}
    assert "cannot write" in cap.err
