import json

import pandas as pd
import pytest

from hera.cli import main
from hera.errors import HeraError
from hera.results_cli import concat


def _part(path, model):
    pd.DataFrame({"model": [model], "qps_star": [1.0]}).to_csv(path, index=False)
    path.with_name(path.name + ".meta.json").write_text(json.dumps({"git_commit": "abc", "machine": {"x": 1}}))
    return path


def test_concat_keeps_rows_and_provenance(tmp_path):
    parts = [_part(tmp_path / "a.csv", "ncf"), _part(tmp_path / "b.csv", "wnd")]
    out = tmp_path / "all" / "x.csv"
    assert main(["results", "concat", "--out", str(out), *map(str, parts)]) == 0
    assert list(pd.read_csv(out)["model"]) == ["ncf", "wnd"]
    meta = json.loads((tmp_path / "all" / "x.csv.meta.json").read_text())
    assert meta["machine"] == {"x": 1} and len(meta["parts"]) == 2


def test_concat_missing_or_empty_part(tmp_path):
    with pytest.raises(HeraError, match="does not exist"):
        concat(tmp_path / "o.csv", [tmp_path / "nope.csv"])
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(HeraError, match="not a readable CSV"):
        concat(tmp_path / "o.csv", [tmp_path / "empty.csv"])
