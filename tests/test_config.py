import pytest

from hera import config
from hera.errors import ConfigError


def test_defaults_filled():
    c = config.validate({"scale": "ci"})
    assert c["models"][0] == "dlrm_rmc1" and len(c["models"]) == 8
    assert c["sla"]["multiplier"] == 3 and c["sla"]["percentile"] == 0.95 and c["sla"]["rule"] == "size_medians_p99"
    assert c["search"]["min_queries"] == 300
    assert c["confirm"]["repeats"] == 3 and c["model"]["replicates"] == 20
    assert c["colocation"]["repeats"] is None  # the rays take confirm.repeats


def test_the_rays_take_colocation_repeats_where_set():
    from hera.profile.colocation import ray_settings

    c = config.validate({"scale": "ci"})
    assert ray_settings(c).repeats == 3
    c = config.validate({"scale": "ci", "confirm": {"repeats": 4}, "colocation": {"repeats": 7}})
    s = ray_settings(c)
    assert s.repeats == 7 and s.confidence == c["confirm"]["confidence"] and s.step == c["confirm"]["step"]


@pytest.mark.parametrize("override, match", [
    ({"confirm": {"repeats": 2}}, r"confirm.repeats: 2 is less than the minimum of 3"),
    ({"confirm": {"confidence": 1.5}}, r"confirm.confidence: 1.5 is greater than the maximum"),
    ({"confirm": {"confidence": 0.2}}, r"confirm.confidence: 0.2 is less than the minimum"),
    ({"model": {"replicates": 1}}, r"model.replicates"),
    ({"sla": {"rule": "median"}}, r"sla.rule"),
    ({"colocation": {"repeats": 2}}, r"colocation.repeats"),
    ({"service": {"idle_gaps_ms": [0, 3]}}, r"service.idle_gaps_ms"),
    ({"service": {"idle_queries_per_gap": 1}}, r"service.idle_queries_per_gap"),
])
def test_measurement_settings_out_of_range_are_one_line_errors(override, match):
    with pytest.raises(ConfigError, match=match) as e:
        config.validate({"scale": "ci", **override})
    assert "\n" not in str(e.value)


def test_unknown_top_level_key_named():
    with pytest.raises(ConfigError, match="bogus"):
        config.validate({"scale": "ci", "bogus": 1})


def test_unknown_nested_key_named():
    with pytest.raises(ConfigError, match=r"sla.*mutliplier|mutliplier"):
        config.validate({"scale": "ci", "sla": {"mutliplier": 3}})


def test_wrong_value_named():
    with pytest.raises(ConfigError, match="scale"):
        config.validate({"scale": "huge"})
    with pytest.raises(ConfigError, match="models"):
        config.validate({"scale": "ci", "models": ["dlrm_rmc9"]})


def test_model_ids_come_from_the_zoo():
    """models/*.yaml is the one list of model ids: configs are checked against it, and the lists that must
    name every model (the default study, the figures' display names) hold exactly its ids."""
    from hera.report import style
    from hera.zoo.spec import list_models

    known = list_models()
    with pytest.raises(ConfigError, match=r"colocation.models: unknown model 'dlrm_rmc9'; known: .*dlrm_rmc1"):
        config.validate({"scale": "ci", "colocation": {"models": ["dlrm_rmc1", "dlrm_rmc9"]}})
    assert sorted(config.validate({"scale": "ci"})["models"]) == known
    assert sorted(style.MODEL_LABELS) == known


def test_load_file_and_overrides(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text("scale: ci\nbatch_size: 32\n")
    c = config.load(p, ["sla.multiplier=3", "models=[ncf, wnd]"])
    assert c["batch_size"] == 32 and c["sla"]["multiplier"] == 3 and c["models"] == ["ncf", "wnd"]


def test_missing_and_bad_files(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        config.load(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("scale: [ci\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        config.load(bad)
    with pytest.raises(ConfigError, match="key=value"):
        config.load(None, ["scale"], base={"scale": "ci"})


def test_shipped_configs_are_valid():
    from hera.paths import repo_root

    for name in ("ci", "default", "paper"):
        config.load(repo_root() / "workflow" / "config" / f"{name}.yaml")


def test_config_cli_write_and_show(tmp_path, capsys):
    import json

    from hera.cli import main

    out = tmp_path / "c.json"
    assert main(["config", "write", "--json", '{"scale": "ci", "seed": 3}', "--out", str(out)]) == 0
    written = json.loads(out.read_text())
    assert written["seed"] == 3 and written["sla"]["multiplier"] == 3
    assert main(["config", "write", "--json", '{"scale": "ci", "sedd": 3}', "--out", str(out)]) == 2
    assert "sedd" in capsys.readouterr().err
    assert main(["config", "write", "--json", "{not json", "--out", str(out)]) == 2
    p = tmp_path / "c.yaml"
    p.write_text("scale: ci\n")
    capsys.readouterr()
    assert main(["config", "show", str(p), "--set", "batch_size=32"]) == 0
    assert json.loads(capsys.readouterr().out)["batch_size"] == 32


def test_coerce_strings_undoes_snakemakes_string_parsing():
    # snakemake --config search='{"max_queries": 400}' cores='[0, 1]' gives strings inside (YAML BaseLoader)
    raw = {"scale": "ci", "seed": "3", "cores": ["0", "1"], "quantized": "true",
           "search": {"max_queries": "400", "rel_tolerance": "0.2"}, "models": ["ncf", "wnd"],
           "colocation": {"models": ["ncf", "wnd"]}}
    out = config.coerce_strings(raw)
    assert out is raw and out["seed"] == 3 and out["cores"] == [0, 1] and out["quantized"] is True
    assert out["search"] == {"max_queries": 400, "rel_tolerance": 0.2}
    assert out["scale"] == "ci" and out["models"] == ["ncf", "wnd"] and out["colocation"]["models"] == ["ncf", "wnd"]
    assert config.coerce_strings({"cores": "auto"})["cores"] == "auto"
    # what does not spell the expected type stays a string, so validation still names the key
    bad = config.coerce_strings({"search": {"max_queries": "lots"}})
    with pytest.raises(ConfigError, match="max_queries"):
        config.validate({"scale": "ci", **bad})
