"""Figures F1..F8 from synthetic result files: files written, readable, notes shown instead of empty plots."""

from __future__ import annotations

import matplotlib.image as mpimg
import matplotlib.text
import pandas as pd
import pytest
from test_report_synthetic import write_results

from hera.errors import HeraError
from hera.report import claims, figures, io, style


@pytest.fixture(scope="module")
def rendered(tmp_path_factory):
    """Every figure drawn once from a complete synthetic 16-core results directory."""
    root = tmp_path_factory.mktemp("rep")
    results = write_results(root / "results" / "ci")
    out = root / "figures"
    return {fid: figures.build(fid, results, out) for fid in figures.FIGURES}


@pytest.fixture()
def texts(monkeypatch):
    """Capture every text drawn on each figure just before it is saved."""
    seen: list[str] = []
    save = style.save

    def spy(fig, out_dir, fig_id):
        seen.append(" ".join(t.get_text() for t in fig.findobj(matplotlib.text.Text)))
        return save(fig, out_dir, fig_id)

    monkeypatch.setattr(style, "save", spy)
    return seen


@pytest.mark.slow
@pytest.mark.parametrize("fid", list(figures.FIGURES))
def test_every_figure_is_written_as_pdf_and_png(rendered, fid):
    pdf, png = rendered[fid]
    assert pdf.name == f"{fid}.pdf" and png.name == f"{fid}.png"
    assert pdf.read_bytes()[:4] == b"%PDF" and pdf.stat().st_size > 1000
    img = mpimg.imread(png)
    assert img.shape[0] > 300 and img.shape[1] > 300


@pytest.mark.slow
def test_footer_names_machine_and_scale(tmp_path, texts):
    results = write_results(tmp_path / "results" / "ci", only=["profile/latency.csv"])
    figures.build("F1", results, tmp_path / "out")
    assert "Synthetic Xeon 8380, 16 usable cores" in texts[0] and "scale: ci" in texts[0]
    assert "LLC partitioning available" in texts[0]


@pytest.mark.slow
def test_two_core_machine_without_resctrl_is_stated_on_the_figures(tmp_path, texts):
    results = write_results(tmp_path / "r" / "ci", cores=2, resctrl=False,
                            only=["profile/scalability.csv", "colocation/pairs.csv", "colocation/predicted.csv"])
    figures.build("F2", results, tmp_path / "out")
    figures.build("F4", results, tmp_path / "out")
    assert "not observable on this machine" in texts[0] and "split 1+1" in texts[0]
    assert "resctrl unavailable" in texts[1] and "split 1+1" in texts[1]


@pytest.mark.slow
def test_note_column_is_shown(tmp_path, texts):
    results = write_results(tmp_path / "r" / "ci", only=["cluster/servers.csv"])
    path = results / "cluster/servers.csv"
    df = pd.read_csv(path).assign(note="mix 'skewed' needs more memory than one node has")
    df.to_csv(path, index=False)
    figures.build("F8", results, tmp_path / "out")
    assert "mix 'skewed' needs more memory than one node has" in texts[0]


def test_single_worker_scalability_shows_a_message_not_an_empty_plot(tmp_path, texts):
    results = write_results(tmp_path / "r" / "ci", only=["profile/scalability.csv"])
    path = results / "profile/scalability.csv"
    pd.read_csv(path).query("workers == 1").to_csv(path, index=False)
    paths = figures.build("F2", results, tmp_path / "out")
    assert all(p.stat().st_size > 0 for p in paths)
    assert "1 worker only" in texts[0]


F3_FILES = ["profile/interference.csv", "profile/interference_calibration.csv"]


@pytest.mark.slow
def test_interference_without_pressure_rows_says_why(tmp_path, texts):
    results = write_results(tmp_path / "r" / "ci", only=F3_FILES)
    path = results / "profile/interference.csv"
    pd.read_csv(path).query("part != 'pressure'").to_csv(path, index=False)
    figures.build("F3", results, tmp_path / "out")
    assert "pressure exerted was not measured" in texts[0]


@pytest.mark.slow
def test_interference_without_usable_calibration_draws_the_reporter_slowdown(tmp_path, texts):
    results = write_results(tmp_path / "r" / "ci", only=F3_FILES)
    path = results / "profile/interference.csv"
    df = pd.read_csv(path)
    eq = df["metric"] == "equivalent_intensity"
    df.loc[eq, ["value", "value_lo", "value_hi"]] = float("nan")
    df.loc[eq, "note"] = "not observable on this machine: the cache reporter slows down 1.01x"
    df.to_csv(path, index=False)
    figures.build("F3", results, tmp_path / "out")
    assert "reporter slowdown (x; no usable calibration)" in texts[0]
    assert "not observable on this machine: the cache reporter" in texts[0]


@pytest.mark.slow
def test_load_change_without_moves_and_without_provenance(tmp_path, texts):
    results = write_results(tmp_path / "r" / "ci", sidecars=False,
                            only=["serving/load_change.csv", "serving/moves.csv"])
    pd.DataFrame(columns=["t_s", "tenant", "resource", "delta", "reason"]).to_csv(
        results / "serving/moves.csv", index=False)
    figures.build("F7", results, tmp_path / "out")
    assert "no resource move" in texts[0] and "machine unknown" in texts[0]


@pytest.mark.slow
def test_policy_figures_without_hera_have_no_headline(tmp_path, texts):
    results = write_results(tmp_path / "r" / "ci", only=["policy/emu.csv", "cluster/servers.csv"])
    for rel in ("policy/emu.csv", "cluster/servers.csv"):
        pd.read_csv(results / rel).query("policy != 'hera'").to_csv(results / rel, index=False)
    figures.build("F5", results, tmp_path / "out")
    figures.build("F8", results, tmp_path / "out")
    assert "vs single-tenant" not in texts[0] and "vs single-tenant" not in texts[1]


@pytest.mark.slow
def test_headline_numbers_match_the_claims(tmp_path, texts):
    results = write_results(tmp_path / "r" / "ci", only=["policy/emu.csv"])
    figures.build("F5", results, tmp_path / "out")
    gain = claims.emu_gain(io.read_table(results, "policy/emu.csv").df)
    assert f"{gain:+.1%}" in texts[0]


def test_missing_input_and_unknown_figure_are_errors(tmp_path):
    with pytest.raises(io.ResultError, match="latency.csv does not exist"):
        figures.build("F1", tmp_path, tmp_path / "out")
    with pytest.raises(HeraError, match="unknown figure 'F10'"):
        figures.build("F10", tmp_path, tmp_path / "out")
    assert figures.missing_inputs("f7", tmp_path) == ["serving/load_change.csv", "serving/moves.csv"]


def test_colours_are_fixed_per_name():
    a = style.palette("policy", ["oracle", "hera", "new_policy"])
    b = style.palette("policy", ["hera", "single_tenant"])
    assert a["hera"] == b["hera"] == style.POLICY_COLORS["hera"]
    assert a["new_policy"] not in style.POLICY_COLORS.values()
    assert list(a) == ["hera", "oracle", "new_policy"]
    assert style.label("model", "mtwnd") == "MT-WnD" and style.label("policy", "parties") == "PARTIES"


def test_pairs_without_any_emu_show_a_message(tmp_path, texts):
    results = write_results(tmp_path / "r" / "ci", only=["colocation/pairs.csv", "colocation/predicted.csv"])
    for rel in ("colocation/pairs.csv", "colocation/predicted.csv"):
        pd.read_csv(results / rel).assign(emu=float("nan")).to_csv(results / rel, index=False)
    figures.build("F4", results, tmp_path / "out")
    assert "no model pair has a measured or predicted EMU" in texts[0]


@pytest.mark.slow
def test_f4_shows_every_pair_measured_or_predicted(tmp_path, texts):
    """Pairs of the six measured models are measured cells with the prediction of their best point beside;
    the other pairs are predicted cells, hatched and marked '~'."""
    results = write_results(tmp_path / "r" / "ci", only=["colocation/pairs.csv", "colocation/predicted.csv"])
    meas, pred = (io.read_table(results, rel).df for rel in ("colocation/pairs.csv", "colocation/predicted.csv"))
    cells = figures.pair_cells(meas, pred)
    assert len(cells) == 28 and (cells["source"] == "measured").sum() == 15
    best = meas.loc[meas["best"]].iloc[0]
    row = cells[(cells.model_a == best.model_a) & (cells.model_b == best.model_b)].iloc[0]
    assert (row.emu, row.predicted_emu, row.source) == (best.emu, best.predicted_emu, "measured")
    figures.build("F4", results, tmp_path / "out")
    assert f"{best.emu:.2f} ({best.predicted_emu:.2f})" in texts[0]
    assert "~" in texts[0] and "hatched" in texts[0]
    text = " ".join(texts[0].split())  # notes are wrapped
    assert "15 of 28 pairs measured" in text and "13 predicted from O(N) profiles only" in text


@pytest.mark.slow
def test_f5_f8_show_the_hera_oracle_gap_and_what_hera_decided_from(tmp_path, texts):
    results = write_results(tmp_path / "r" / "ci", only=["policy/emu.csv", "cluster/servers.csv"])
    figures.build("F5", results, tmp_path / "out")
    figures.build("F8", results, tmp_path / "out")
    emu = io.read_table(results, "policy/emu.csv").df
    gap = claims.oracle_gaps(emu)
    assert f"vs oracle: {claims.signed_pct(gap.mean(), 1)}" in texts[0] and gap.mean() < 0
    assert "Hera decided from pair predictions (O(N) profiles)" in " ".join(texts[0].split())
    f8 = " ".join(texts[1].split())
    assert "vs oracle: +" in f8 and "Hera decided from pair predictions" in f8
    assert "promised -> as evaluated: balanced 8 -> 9" in f8


@pytest.mark.slow
def test_only_explanatory_or_shared_notes_are_printed(tmp_path, texts):
    results = write_results(tmp_path / "r" / "ci", only=F3_FILES)
    path = results / "profile/interference.csv"
    df = pd.read_csv(path)
    df.loc[df.index[0], "note"] = "counters: unavailable (perf cannot count here)"
    df.to_csv(path, index=False)
    figures.build("F3", results, tmp_path / "out")
    assert "counters: unavailable" in texts[0]                        # explains a missing effect
    assert "reporter alone 5 GB/s" not in texts[0]                    # a per-row measurement detail
    assert "more notes in the note column of interference.csv" in texts[0]
    assert "pressure exerted (1 worker(s) at load 1)" in texts[0]
    assert "equivalent antagonist intensity" in texts[0]


@pytest.mark.parametrize("x,digits,text", [(-0.0, 0, "0%"), (-1e-9, 1, "0.0%"), (0.0, 1, "0.0%"),
                                           (0.264, 0, "+26%"), (-0.373, 1, "-37.3%")])
def test_signed_pct_never_prints_minus_zero(x, digits, text):
    assert claims.signed_pct(x, digits) == text


def test_f3_flags_models_whose_baseline_moved_during_the_profile():
    sens = pd.DataFrame({"model": ["din", "din", "rmc2", "rmc2", "rmc3"],
                         "drift": [1.71, 1.2, 0.92, 1.0, 1.1]})
    assert figures.drifted_models(sens) == {"din": 1.71}
    assert figures.drifted_models(sens, tol=0.05) == {"din": 1.71, "rmc2": 0.92, "rmc3": 1.1}


@pytest.mark.slow
@pytest.mark.parametrize("fid", ["F4", "F5", "F8"])
def test_figures_are_pure_functions_of_the_result_files(tmp_path, fid):
    results = write_results(tmp_path / "results" / "ci")
    a = figures.build(fid, results, tmp_path / "a")
    figures.build(fid, results, tmp_path / "b")
    for path in a:
        assert path.read_bytes() == (tmp_path / "b" / path.name).read_bytes(), path.name


@pytest.mark.slow
def test_interference_with_one_kind_not_observable_draws_the_other(tmp_path, texts):
    results = write_results(tmp_path / "r" / "ci", only=F3_FILES)
    path = results / "profile/interference.csv"
    df = pd.read_csv(path)
    gone = (df["metric"] == "equivalent_intensity") & (df["kind"] == "cache")
    df.loc[gone, ["value", "value_lo", "value_hi"]] = float("nan")
    df.loc[gone, "note"] = "not observable on this machine: the cache reporter's slowdown is 1.01x"
    df.loc[df["metric"] == "equivalent_intensity", "extrapolated"] = False
    df.to_csv(path, index=False)
    figures.build("F3", results, tmp_path / "out")
    assert "equivalent antagonist intensity" in texts[0] and "the cache reporter's slowdown is 1.01x" in texts[0]


@pytest.mark.slow
def test_f6_names_policies_that_share_one_measured_node(tmp_path, texts):
    results = write_results(tmp_path / "r" / "ci", only=["serving/latency_vs_load.csv"])
    path = results / "serving/latency_vs_load.csv"
    df = pd.read_csv(path)
    first = sorted(df["policy"].unique())[0]
    df = df.assign(measured_with=df["policy"])
    df.loc[df["policy"] == "hera", "measured_with"] = first
    df.to_csv(path, index=False)
    figures.build("F6", results, tmp_path / "out")
    assert f"hera = {first}'s" in texts[0] and "one run per distinct node" in texts[0]
    assert figures.shared_measurements(df.drop(columns="measured_with")) == ""
    assert figures.shared_measurements(df.assign(measured_with=df["policy"])) == ""
