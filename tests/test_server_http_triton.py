"""The KServe v2 front end with a standard client (tritonclient.http), RemoteNode, and run_http's shutdown.

Servers listen on 127.0.0.1 with an ephemeral port; the node is the fake one of ``test_server_http``.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import urllib.request
from pathlib import Path

import numpy as np
import pytest
import tritonclient.http as httpclient
from tritonclient.utils import InferenceServerException

from hera.server.control import NodeControl
from hera.server.http import BackgroundServer, HttpControlError, RemoteNode
from test_server_http import FakeNode, fake_scores

TESTS_DIR = Path(__file__).resolve().parent


@pytest.fixture()
def served():
    node = FakeNode()
    with BackgroundServer(node, host="127.0.0.1", port=0) as srv:
        client = httpclient.InferenceServerClient(url=f"127.0.0.1:{srv.port}", network_timeout=30.0)
        try:
            yield node, srv, client
        finally:
            client.close()


def rmc_inputs(n: int, binary: bool, seed: int = 0):
    rng = np.random.default_rng(seed)
    dense = rng.random((n, 4), dtype=np.float32)
    ids = np.concatenate([rng.integers(0, 100, (n, 2)), rng.integers(0, 50, (n, 3))], axis=1).astype(np.int64)
    a = httpclient.InferInput("dense", list(dense.shape), "FP32")
    a.set_data_from_numpy(dense, binary_data=binary)
    b = httpclient.InferInput("sparse_ids", list(ids.shape), "INT64")
    b.set_data_from_numpy(ids, binary_data=binary)
    return [a, b], dense, ids


def test_health_and_metadata_with_tritonclient(served):
    node, srv, client = served
    assert client.is_server_live() and client.is_server_ready()
    assert client.is_model_ready("rmc") and not client.is_model_ready("nope")
    assert client.get_server_metadata()["name"] == "hera"
    meta = client.get_model_metadata("rmc")
    assert meta["platform"] == "torchrec"
    assert {i["name"]: (i["datatype"], i["shape"]) for i in meta["inputs"]} == {
        "dense": ("FP32", [-1, 4]), "sparse_ids": ("INT64", [-1, 5])}
    with pytest.raises(InferenceServerException) as err:
        client.get_model_metadata("nope")
    assert err.value.status() == "404" and "unknown model 'nope'" in err.value.message()


@pytest.mark.parametrize("binary", [False, True], ids=["json", "binary"])
def test_infer_with_tritonclient(served, binary):
    node, srv, client = served
    inputs, dense, ids = rmc_inputs(7, binary)
    outputs = [httpclient.InferRequestedOutput("scores", binary_data=binary)]
    result = client.infer("rmc", inputs, outputs=outputs, request_id="r7")
    scores = result.as_numpy("scores")
    assert scores.shape == (7, 1) and scores.dtype == np.float32
    np.testing.assert_allclose(scores, fake_scores(dense, ids, 1), rtol=1e-6)
    assert result.get_response()["id"] == "r7"
    assert node.calls["rmc"] == 1


def test_infer_default_outputs_and_compression(served):
    """No outputs requested → tritonclient asks for binary outputs; gzip/deflate bodies both ways."""
    node, srv, client = served
    inputs, dense, ids = rmc_inputs(5, binary=True, seed=2)
    expected = fake_scores(dense, ids, 1)
    np.testing.assert_allclose(client.infer("rmc", inputs).as_numpy("scores"), expected, rtol=1e-6)
    for algo in ("gzip", "deflate"):
        res = client.infer("rmc", inputs, request_compression_algorithm=algo,
                           response_compression_algorithm=algo)
        np.testing.assert_allclose(res.as_numpy("scores"), expected, rtol=1e-6)


def test_errors_with_tritonclient(served):
    node, srv, client = served
    inputs, _, _ = rmc_inputs(3, binary=False)
    with pytest.raises(InferenceServerException) as err:
        client.infer("nope", inputs)
    assert err.value.status() == "404"
    bad = httpclient.InferInput("sparse_ids", [3, 5], "INT64")
    bad.set_data_from_numpy(np.full((3, 5), 10**6, dtype=np.int64), binary_data=True)
    with pytest.raises(InferenceServerException) as err:
        client.infer("rmc", [inputs[0], bad])
    assert err.value.status() == "400" and "outside table 't0'" in err.value.message()
    wrong = httpclient.InferInput("dense", [3, 4], "FP64")
    wrong.set_data_from_numpy(np.zeros((3, 4)), binary_data=True)
    with pytest.raises(InferenceServerException) as err:
        client.infer("rmc", [wrong, inputs[1]])
    assert err.value.status() == "400" and "'dense' must be FP32, got FP64" in err.value.message()
    node.fail.add("rmc")
    with pytest.raises(InferenceServerException) as err:
        client.infer("rmc", inputs)
    assert err.value.status() == "500" and "worker 3 died" in err.value.message()
    assert node.calls["rmc"] == 1  # only the failing query reached the node


def test_body_too_large_is_413():
    node = FakeNode()
    with BackgroundServer(node, max_body_bytes=4096) as srv:
        client = httpclient.InferenceServerClient(url=f"127.0.0.1:{srv.port}")
        inputs, _, _ = rmc_inputs(64, binary=False)
        with pytest.raises(InferenceServerException) as err:
            client.infer("rmc", inputs)
        client.close()
    assert err.value.status() == "413" and "exceeded" in err.value.message()
    assert node.calls["rmc"] == 0


def test_remote_node_control_client(served):
    node, srv, client = served
    remote = RemoteNode(srv.url)
    assert remote.ready()
    assert isinstance(remote, NodeControl)  # the typed control interface, over HTTP
    remote.resize("rmc", [1, 0])
    assert node.cores["rmc"] == [1, 0]
    remote.set_llc_ways("ncf", 2)
    assert node.ways["ncf"] == 2
    stats = remote.stats(window_s=0.5)
    assert node.windows[-1] == 0.5 and stats == node.stats()
    assert stats["rmc"].cores == (1, 0) and stats["ncf"].llc_ways == 2
    with pytest.raises(HttpControlError, match=r"HTTP 404: unknown tenant 'zzz'"):
        remote.resize("zzz", [0])
    with pytest.raises(HttpControlError, match=r"HTTP 400: llc: 'ways' must be an integer >= 1"):
        remote.set_llc_ways("rmc", 0)
    metrics = urllib.request.urlopen(srv.url + "/metrics", timeout=10).read().decode()
    assert 'hera_tenant_llc_ways{tenant="ncf"} 2' in metrics


def test_remote_node_unreachable():
    with BackgroundServer(FakeNode()) as srv:
        url = srv.url
    remote = RemoteNode(url, timeout_s=2)
    assert not remote.ready()
    with pytest.raises(HttpControlError, match="failed"):
        remote.stats()


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_run_http_shuts_down_cleanly_on_signal(sig):
    code = textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {str(TESTS_DIR)!r})
        from test_server_http import FakeNode
        from hera.server.http import run_http
        run_http(FakeNode(), "127.0.0.1", 0, on_ready=lambda url: print("READY", url, flush=True))
        print("STOPPED", flush=True)
    """)
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        line = proc.stdout.readline()
        assert line.startswith("READY http://127.0.0.1:"), line + proc.stderr.read()
        url = line.split()[1]
        assert urllib.request.urlopen(url + "/v2/health/live", timeout=10).status == 200
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err
    assert out.strip() == "STOPPED" and "Traceback" not in err
