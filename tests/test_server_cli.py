"""``hera serve``: start a synthetic node from a YAML config, stop after --duration-s, print final stats."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request

import pytest

C0 = sorted(os.sched_getaffinity(0))[0]

# the serve sub-command on its own parser (the full `hera` CLI needs every layer's module present)
RUN = ("import argparse, sys; from hera.server import serve_cli; p = argparse.ArgumentParser(); "
       "serve_cli.register(p.add_subparsers()); a = p.parse_args(sys.argv[1:]); sys.exit(a.func(a))")


@pytest.mark.slow
def test_serve_runs_for_duration_and_prints_stats(tmp_path):
    cfg = tmp_path / "node.yaml"
    cfg.write_text(f"scale: ci\nrunner: synthetic\nresctrl_root: {tmp_path / 'none'}\n"
                   f"tenants:\n  - {{name: a, model: tiny, cores: [{C0}], sla_ms: 5}}\n"
                   "http: {host: 127.0.0.1, port: 0}\n")
    proc = subprocess.Popen([sys.executable, "-c", RUN, "serve", "--config", str(cfg), "--duration-s", "4"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        url, lines = None, []
        for line in proc.stderr:  # log lines; the front end says where it listens
            lines.append(line)
            if "serving KServe v2 on " in line:
                url = line.split("serving KServe v2 on ")[1].strip()
                break
        if url is not None:  # HTTP front end present: one query end to end through the real node
            with urllib.request.urlopen(url + "/v2/health/ready", timeout=10) as resp:
                assert resp.status == 200
            body = {"inputs": [{"name": "sample_start", "shape": [1], "datatype": "INT64", "data": [3]},
                               {"name": "n_items", "shape": [1], "datatype": "INT64", "data": [5]}]}
            req = urllib.request.Request(url + "/v2/models/a/infer", data=json.dumps(body).encode(),
                                         headers={"Content-Type": "application/json"})
            with urllib.request.urlopen(req, timeout=10) as resp:
                out = json.loads(resp.read())
            assert out["outputs"][0]["shape"] == [5, 1]
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, ("".join(lines) + err)[-2000:]
    final = json.loads(out.strip().splitlines()[-1])
    assert final["stats"]["a"]["cores"] == [C0] and final["stats"]["a"]["library_items"] == 4096
    assert final["stats"]["a"]["completed_queries"] == (1 if url else 0)
    assert final["llc_partitioning"] == "unavailable" and final["config"]["tenants"][0]["sla_ms"] == 5.0
    assert "LLC partitioning unavailable" in "".join(lines) + err


def test_serve_reports_config_errors(tmp_path):
    cfg = tmp_path / "bad.yaml"
    cfg.write_text("runner: synthetic\ntenants:\n  - {name: a, model: tiny, cores: [0], batch_size: 0}\n")
    run = ("import argparse, sys; from hera.server import serve_cli; from hera.errors import HeraError\n"
           "p = argparse.ArgumentParser(); serve_cli.register(p.add_subparsers()); a = p.parse_args(sys.argv[1:])\n"
           "try:\n    a.func(a)\nexcept HeraError as e:\n    print('error:', e); sys.exit(2)\n")
    proc = subprocess.run([sys.executable, "-c", run, "serve", "--config", str(cfg), "--no-http"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and "batch_size must be >= 1" in proc.stdout
