"""The HTTP front end on a real Node (synthetic runner: tiny in-memory model, real worker processes)."""

from __future__ import annotations

import asyncio
import json

import aiohttp
import numpy as np
import pytest
import tritonclient.http as httpclient
from tritonclient.utils import InferenceServerException

from hera.server import Node
from hera.server.config import usable_cpus
from hera.server.http import BackgroundServer, RemoteNode
from test_server_http import check_exposition

FAST = {"dense_in": 8, "n_ids": 3, "rows": 100, "library_items": 256}
SLOW = {"dense_in": 4, "n_ids": 2, "rows": 50, "library_items": 128, "delay_ms": 150, "fail_sample": 100}


@pytest.fixture(scope="module")
def server():
    cpus = usable_cpus()
    config = {
        "runner": "synthetic", "scale": "ci", "allow_core_sharing": True, "mp_context": "forkserver",
        "start_timeout_s": 120,
        "tenants": [
            {"name": "fast", "model": "syn_fast", "cores": [cpus[0]], "max_items": 64, "batch_size": 32,
             "queue_limit": 64, "options": FAST},
            {"name": "slow", "model": "syn_slow", "cores": [cpus[-1]], "max_items": 16, "batch_size": 16,
             "queue_limit": 1, "options": SLOW},
        ],
    }
    node = Node(config).start()
    try:
        with BackgroundServer(node) as srv:
            yield node, srv
    finally:
        node.stop(drain=False)


def _reference_library():
    """The fast tenant's library and model, rebuilt in this process (the synthetic runner is seeded)."""
    from hera.server.runner import RunnerSpec, SyntheticRunner

    return SyntheticRunner(RunnerSpec(kind="synthetic", model="syn_fast", options=dict(FAST), seed=0))


@pytest.mark.slow
def test_metadata_and_infer_match_the_sample_library(server):
    node, srv = server
    client = httpclient.InferenceServerClient(url=f"127.0.0.1:{srv.port}")
    try:
        assert client.is_server_live() and client.is_server_ready() and client.is_model_ready("slow")
        meta = client.get_model_metadata("fast")
        assert {i["name"]: i["shape"] for i in meta["inputs"]} == {"dense": [-1, 8], "sparse_ids": [-1, 3]}
        assert meta["outputs"] == [{"name": "scores", "datatype": "FP32", "shape": [-1, 1]}]
        params = meta["parameters"]
        assert params["library_items"] == 256 and params["lookups_per_item"] == 3
        assert params.get("id_limits") == [100] * 3 or [t["rows"] for t in params["tables"]] == [100]

        # sample-library form: items 40..49 of the library
        start = httpclient.InferInput("sample_start", [1], "INT64")
        start.set_data_from_numpy(np.array([40], dtype=np.int64), binary_data=False)
        count = httpclient.InferInput("n_items", [1], "INT64")
        count.set_data_from_numpy(np.array([10], dtype=np.int64), binary_data=False)
        by_index = client.infer("fast", [start, count]).as_numpy("scores")
        assert by_index.shape == (10, 1) and np.isfinite(by_index).all()

        # the same items sent as tensors (JSON and binary) give the same scores
        ref = _reference_library()
        dense, ids = ref.dense[40:50], ref.ids[40:50]
        for binary in (False, True):
            d = httpclient.InferInput("dense", [10, 8], "FP32")
            d.set_data_from_numpy(dense, binary_data=binary)
            i = httpclient.InferInput("sparse_ids", [10, 3], "INT64")
            i.set_data_from_numpy(ids, binary_data=binary)
            out = [httpclient.InferRequestedOutput("scores", binary_data=binary)]
            scores = client.infer("fast", [d, i], outputs=out).as_numpy("scores")
            np.testing.assert_allclose(scores, by_index, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(by_index, ref.run_arrays(dense, ids), rtol=1e-4, atol=1e-5)

        # a model error in the worker (synthetic fail_sample) → 500 with the worker's message
        start.set_data_from_numpy(np.array([95], dtype=np.int64), binary_data=False)
        with pytest.raises(InferenceServerException) as err:
            client.infer("slow", [start, count])
        assert err.value.status() == "500" and "failure on sample 100" in err.value.message()
    finally:
        client.close()


def test_overload_and_garbage_stay_with_their_tenant(server):
    node, srv = server
    completed_before = node.stats()["fast"].completed_queries

    async def scenario():
        async with aiohttp.ClientSession(srv.url) as s:
            slow_body = {"inputs": [
                {"name": "sparse_ids", "shape": [1, 2], "datatype": "INT64", "data": [1, 2]},
                {"name": "dense", "shape": [1, 4], "datatype": "FP32", "data": [0.1] * 4}]}
            fast_body = {"inputs": [{"name": "sample_start", "shape": [1], "datatype": "INT64", "data": [0]},
                                    {"name": "n_items", "shape": [1], "datatype": "INT64", "data": [4]}]}
            out_of_range = {"inputs": [
                {"name": "sparse_ids", "shape": [1, 3], "datatype": "INT64", "data": [1, 2, 100000]},
                {"name": "dense", "shape": [1, 8], "datatype": "FP32", "data": [0] * 8}]}
            garbage = [b"{", json.dumps(out_of_range).encode(), b'{"inputs": [{"name": "dense"}]}']

            async def post(name, **kw):
                async with s.post(f"/v2/models/{name}/infer", **kw) as r:
                    return r.status, await r.json()

            # the slow tenant (1 worker, 150 ms per sub-batch, queue_limit 1) must refuse some of 6 at once
            slow = [asyncio.ensure_future(post("slow", json=slow_body)) for _ in range(6)]
            fast = [post("fast", json=fast_body) for _ in range(10)] + [post("fast", data=garbage[k % 3])
                                                                           for k in range(9)]
            fast_res = await asyncio.gather(*fast)
            slow_res = await asyncio.gather(*slow)
            return fast_res, slow_res

    fast_res, slow_res = asyncio.run(scenario())
    assert [st for st, _ in fast_res[:10]] == [200] * 10
    assert all(np.asarray(out["outputs"][0]["data"]).shape == (4,) for _, out in fast_res[:10])
    assert [st for st, _ in fast_res[10:]] == [400] * 9
    codes = sorted(st for st, _ in slow_res)
    assert 503 in codes and 200 in codes and set(codes) <= {200, 503}
    assert all("queue full" in out["error"] for st, out in slow_res if st == 503)
    assert node.stats()["fast"].completed_queries == completed_before + 10  # garbage never reached a worker


def test_control_api_resizes_the_real_node(server):
    node, srv = server
    remote = RemoteNode(srv.url)
    cpus = usable_cpus()
    target = sorted(set(cpus[:2]))
    remote.resize("fast", target)
    stats = remote.stats()
    assert list(stats["fast"].cores) == target and stats["fast"].workers_ready == len(target)
    assert remote.stats(window_s=60.0)["fast"].cores == stats["fast"].cores
    remote.set_llc_ways("slow", 2)
    remote.set_mem_bw("slow", 50)
    assert node.stats()["slow"].llc_ways_requested == 2 and node.stats()["slow"].mem_bw_percent_requested == 50
    remote.resize("fast", [cpus[0]])
    assert node.stats()["fast"].cores == (cpus[0],)

    async def get_metrics():
        async with aiohttp.ClientSession(srv.url) as s:
            async with s.get("/metrics") as r:
                return await r.text()

    text = asyncio.run(get_metrics())
    check_exposition(text)
    assert 'hera_tenant_cores{tenant="fast"} 1' in text and 'tenant="slow"' in text
