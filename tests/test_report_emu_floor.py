"""The pair prediction's EMU error split into the even split's extra, the run's level and the points' scatter
(hera.report.emu_floor, `hera bench emu-floor`)."""

from __future__ import annotations

import json

import pytest

from hera.cli import main
from hera.errors import HeraError
from hera.report.emu_floor import from_figure, split, summary


def _points(level: float, extra: float, scatter: float) -> list[dict]:
    """Two pairs on three rays: every error is level, plus extra on the balanced ray, plus ±scatter."""
    pts = []
    for k, pair in enumerate(("a__b", "c__d")):
        for s in (0.5, 0.75, 0.25):
            e = level + (extra if s == 0.5 else 0.0) + (scatter if k == 0 else -scatter)
            pts.append({"pair": pair, "share_a": s, "emu": 0.8, "predicted_emu": 0.8 + e})
    return pts


def test_the_split_recovers_level_extra_and_scatter():
    r = split(_points(level=-0.05, extra=0.15, scatter=0.02))
    assert r["points"] == 6
    assert r["even_extra"] == pytest.approx(0.15) and r["level"] == pytest.approx(-0.05)
    # errors: balanced 0.12 / 0.08, uneven -0.03 / -0.07 twice each
    assert r["mean_abs_emu_error"] == pytest.approx((0.12 + 0.08 + 2 * 0.03 + 2 * 0.07) / 6, abs=1e-4)
    assert r["without_even_extra"] == pytest.approx((0.03 + 0.07) * 3 / 6, abs=1e-4)  # the balanced ray at the level too
    assert r["ray_centred"] == pytest.approx(0.02)  # only the scatter is left


def test_a_run_without_a_balanced_ray_or_measurements_is_a_one_line_error():
    with pytest.raises(HeraError, match="balanced ray"):
        split([p for p in _points(0.0, 0.1, 0.0) if p["share_a"] != 0.5])
    with pytest.raises(HeraError, match="no measured point"):
        split([{"pair": "a__b", "share_a": 0.5, "emu": None, "predicted_emu": 0.3}])


def test_the_bench_reads_kept_figures_and_counts_the_bar(tmp_path, capsys):
    files = []
    for i, (level, extra) in enumerate(((0.0, 0.2), (-0.15, 0.1))):
        f = tmp_path / f"pp{i}.json"
        f.write_text(json.dumps({"figure": {"point_errors": _points(level, extra, 0.01)}}))
        files.append(str(f))
    out = tmp_path / "ef.json"
    assert main(["bench", "emu-floor", "--from-figures", *files, "--labels", "r1,r2", "--out", str(out)]) == 0
    fig = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert fig["runs"]["r1"]["even_extra"] == pytest.approx(0.2)
    s = fig["summary"]
    assert s["runs"] == 2 and s["bar"] == 0.10 and s["even_extra"]["positive"] == 2
    assert s["ray_centred"]["bar_met"] == 2 and s["without_even_extra"]["bar_met"] == 1  # r2's level stays
    assert json.loads(out.read_text())["figure"] == fig
    (tmp_path / "bad.json").write_text(json.dumps({"figure": {}}))
    assert main(["bench", "emu-floor", "--from-figures", str(tmp_path / "bad.json")]) != 0
    assert "point_errors" in capsys.readouterr().err
    with pytest.raises(HeraError, match="does not exist"):
        from_figure(tmp_path / "nowhere.json")
    assert summary({"x": split(_points(0.0, 0.0, 0.0))}, 0.1)["mean_abs_emu_error"]["bar_met"] == 1
