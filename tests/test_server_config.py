"""Server config (hera.server.config): YAML → typed NodeConfig with strict validation (no processes)."""

from __future__ import annotations

import pytest

from hera.errors import ConfigError
from hera.server import config as cfgmod
from hera.server.config import NodeConfig, TenantConfig

USABLE = [0, 1]
MODELS = ["dlrm_rmc1", "dlrm_rmc3", "ncf"]


def parse(d):
    return cfgmod.from_dict(d, usable=USABLE, models=MODELS)


def base(**top):
    d = {"scale": "ci", "batch_size": 32,
         "tenants": [{"name": "rmc1", "model": "dlrm_rmc1", "cores": [0], "batch_size": 64, "queue_limit": 8,
                      "quantized": False, "sla_ms": 50},
                     {"name": "rmc3", "model": "dlrm_rmc3", "cores": [1]}],
         "http": {"host": "127.0.0.1", "port": 8000}}
    d.update(top)
    return d


def test_example_parses_with_defaults():
    c = parse(base())
    assert isinstance(c, NodeConfig) and c.scale == "ci" and c.runner == "zoo"
    a, b = c.tenants
    assert isinstance(a, TenantConfig) and a.cores == (0,) and a.batch_size == 64 and a.queue_limit == 8
    assert a.sla_ms == 50.0 and b.batch_size == 32 and b.queue_limit == 256 and b.sla_ms is None
    assert c.http.port == 8000 and c.tenant("rmc3").model == "dlrm_rmc3"
    assert c.resolved_models_root().parts[-2:] == ("build", "ci")
    assert c.library_dir(a).parts[-3:] == ("datasets", "ci", "dlrm_rmc1")


def test_roots_overridable(tmp_path):
    c = parse(base(models_root=str(tmp_path / "m"), datasets_root=str(tmp_path / "d")))
    assert c.resolved_models_root() == tmp_path / "m"
    assert c.library_dir(c.tenants[0]) == tmp_path / "d" / "dlrm_rmc1"


def test_round_trip_through_dict():
    c = parse(base())
    assert parse(cfgmod.to_dict(c)) == c


@pytest.mark.parametrize("mutate, match", [
    (lambda d: d.update(bogus=1), "unknown key 'bogus'"),
    (lambda d: d["tenants"][0].update(bach_size=3), "unknown key 'bach_size'"),
    (lambda d: d["http"].update(prot=1), "unknown key 'prot'"),
    (lambda d: d["tenants"][0].update(model="dlrm_rmc9"), "unknown model 'dlrm_rmc9'"),
    (lambda d: d["tenants"][1].update(cores=[0]), "core 0 is given to both"),
    (lambda d: d["tenants"][1].update(cores=[7]), r"cores \[7\] are not on this machine"),
    (lambda d: d["tenants"][1].update(cores=[]), "non-empty list"),
    (lambda d: d["tenants"][1].update(cores=[1, 1]), "twice"),
    (lambda d: d["tenants"][0].update(batch_size=0), "batch_size must be >= 1"),
    (lambda d: d["tenants"][0].update(batch_size=-3), "batch_size must be >= 1"),
    (lambda d: d.update(batch_size=0), "batch_size must be >= 1"),
    (lambda d: d["tenants"][0].update(queue_limit="many"), "queue_limit must be an integer"),
    (lambda d: d["tenants"][0].update(sla_ms=0), "sla_ms must be a number > 0"),
    (lambda d: d["tenants"][0].update(quantized="yes"), "quantized must be true or false"),
    (lambda d: d["tenants"][0].update(mem_bw_percent=150), "mem_bw_percent must be <= 100"),
    (lambda d: d["tenants"][1].update(name="rmc1"), "tenant name 'rmc1' is used twice"),
    (lambda d: d["tenants"][1].update(name="a b"), "name 'a b'"),
    (lambda d: d["tenants"][1].pop("model"), "missing key 'model'"),
    (lambda d: d.update(tenants=[]), "tenants must be a non-empty list"),
    (lambda d: d.update(scale="huge"), "scale must be one of"),
    (lambda d: d.update(runner="gpu"), "runner must be one of"),
    (lambda d: d["http"].update(port=70000), "http.port must be <= 65535"),
])
def test_invalid_configs_name_the_problem(mutate, match):
    d = base()
    mutate(d)
    with pytest.raises(ConfigError, match=match):
        parse(d)


def test_core_sharing_allowed_when_asked():
    d = base(allow_core_sharing=True)
    d["tenants"][1]["cores"] = [0, 1]
    assert parse(d).tenants[1].cores == (0, 1)


def test_synthetic_runner_accepts_any_model_name():
    d = base(runner="synthetic")
    d["tenants"][0]["model"] = "tiny"
    assert parse(d).tenants[0].model == "tiny"


def test_load_yaml_file_and_errors(tmp_path):
    p = tmp_path / "node.yaml"
    p.write_text("scale: ci\nrunner: synthetic\ntenants:\n  - {name: a, model: m, cores: [0]}\n")
    c = cfgmod.load(p, usable=USABLE)
    assert c.tenants[0].name == "a" and c.runner == "synthetic"
    c2 = cfgmod.load(p, overrides={"http": {"port": 0}}, usable=USABLE)
    assert c2.http.port == 0
    with pytest.raises(ConfigError, match="does not exist"):
        cfgmod.load(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("tenants: [\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        cfgmod.load(bad)
    notmap = tmp_path / "list.yaml"
    notmap.write_text("- 1\n")
    with pytest.raises(ConfigError, match="must be a mapping"):
        cfgmod.load(notmap)


def test_shipped_example_is_valid():
    from hera.paths import repo_root

    c = cfgmod.load(repo_root() / "workflow/config/server-example.yaml", usable=USABLE, models=MODELS)
    assert [t.name for t in c.tenants] == ["rmc1", "rmc3"]


def test_cores_checked_against_this_machine():
    import os

    usable = sorted(os.sched_getaffinity(0))
    d = base(runner="synthetic")
    d["tenants"] = [{"name": "a", "model": "m", "cores": [max(usable) + 1]}]
    with pytest.raises(ConfigError, match="not on this machine"):
        cfgmod.from_dict(d)
