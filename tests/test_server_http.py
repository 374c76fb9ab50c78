"""KServe v2 HTTP front end against a fake node (aiohttp test client, loopback only)."""

from __future__ import annotations

import asyncio
import json
import re
import threading
import time
from concurrent.futures import Future

import numpy as np
import pytest
from aiohttp.test_utils import TestClient, TestServer

from hera.errors import ResourceError
from hera.server import kserve
from hera.server.errors import BadRequestError, QueueFull, UnknownTenantError
from hera.server.http import make_app
from hera.server.control import TenantSnapshot
from hera.server.stats import render_prometheus
from hera.server.query import QueryResult

# ------------------------------------------------------------------------------------------------ fake node


def _info(model, dense_in, tables, n_outputs=1, max_items=64, library_items=200):
    """What ``Node.tenant_info`` returns once a worker is ready (``tables`` only for the fake)."""
    limits = [rows for _, rows, lookups in tables for _ in range(lookups)]
    return {"model": model, "scale": "ci", "max_items": max_items, "library_items": library_items,
            "dense_in": dense_in, "n_ids": len(limits), "n_outputs": n_outputs, "id_limits": limits,
            "tables": [{"name": n, "rows": r, "lookups": lk} for n, r, lk in tables]}


def fake_scores(dense: np.ndarray, ids: np.ndarray, n_outputs: int) -> np.ndarray:
    """What the fake node computes: float32[n, T], a deterministic function of the inputs."""
    base = dense.astype(np.float64).sum(axis=1) + 0.001 * ids.sum(axis=1)
    cols = [1.0 / (1.0 + np.exp(-(base + k))) for k in range(n_outputs)]
    return np.stack(cols, axis=1).astype(np.float32)


class FakeNode:
    """Same surface as ``hera.server.node.Node`` for the front end; scores computed with numpy.

    Tenants: ``rmc`` (dense 4, tables t0 (100 rows × 2 lookups) and t1 (50 rows × 3)), ``ncf`` (no dense,
    2 outputs), each with a 200-item sample library. ``hold`` keeps a tenant's futures pending until
    ``release``; more than ``queue_limit`` pending queries raise ``QueueFull``. ``fail`` makes a tenant's
    queries fail like a dead worker.
    """

    def __init__(self, queue_limit: int = 2):
        self.infos = {
            "rmc": _info("dlrm_rmc1", 4, [("t0", 100, 2), ("t1", 50, 3)]),
            "ncf": _info("ncf", 0, [("user", 30, 1), ("item", 40, 1)], n_outputs=2, max_items=16),
        }
        self.tenant_names = list(self.infos)
        self.state = "running"
        self.library = {n: (np.random.default_rng(0).random((200, t["dense_in"]), dtype=np.float32),
                            np.zeros((200, t["n_ids"]), dtype=np.int64))
                        for n, t in self.infos.items()}
        self.queue_limit = queue_limit
        self.calls: dict[str, int] = {n: 0 for n in self.infos}
        self.held: dict[str, list] = {n: [] for n in self.infos}
        self.hold: set[str] = set()
        self.fail: set[str] = set()
        self.reject_async: set[str] = set()  # QueueFull set on the future instead of raised by submit
        self.cores = {"rmc": [0], "ncf": [1]}
        self.workers = {"rmc": 1, "ncf": 1}
        self.ways: dict[str, int] = {}
        self.windows: list = []  # window_s of every stats() call
        self._qid = 0

    def tenant_info(self, tenant):
        self._check(tenant)
        return {"tenant": tenant, **self.infos[tenant]}

    def _check(self, tenant):
        if tenant not in self.infos:
            raise UnknownTenantError(f"unknown tenant {tenant!r}")

    def _run(self, tenant, dense, ids) -> Future:
        self.calls[tenant] += 1
        self._qid += 1
        fut: Future = Future()
        t0 = time.monotonic_ns()
        n = ids.shape[0]
        if tenant in self.fail:
            res = QueryResult(self._qid, tenant, n, t0, 0, 0, [], False, "worker 3 died (exit code -9)", None)
        else:
            scores = fake_scores(dense, ids, self.infos[tenant]["n_outputs"])
            res = QueryResult(self._qid, tenant, n, t0, t0 + 1000, t0 + 2000, [0], True, None, scores)
        if tenant in self.reject_async:
            fut.set_exception(QueueFull(f"tenant {tenant!r} queue is full ({self.queue_limit} queries)"))
        elif tenant in self.hold:
            if len(self.held[tenant]) >= self.queue_limit:
                raise QueueFull(f"tenant {tenant!r} queue is full ({self.queue_limit} queries)")
            self.held[tenant].append((fut, res))
        else:
            fut.set_result(res)
        return fut

    def release(self, tenant):
        held, self.held[tenant] = self.held[tenant], []
        for fut, res in held:
            fut.set_result(res)

    def submit_tensors(self, tenant, dense, ids):
        self._check(tenant)
        return self._run(tenant, dense, ids)

    def submit(self, tenant, sample_start, n_items, on_done=None, *, want_scores=False):
        self._check(tenant)
        assert want_scores
        dense, ids = self.library[tenant]
        if n_items > 10:
            raise BadRequestError(f"tenant {tenant!r}: the fake library serves at most 10 items")
        rows = np.arange(sample_start, sample_start + n_items) % len(ids)
        return self._run(tenant, dense[rows], ids[rows])

    def resize(self, tenant, cores):
        self._check(tenant)
        if max(cores) > 3:
            bad = [c for c in cores if c > 3]
            raise ResourceError(f"resize of tenant {tenant!r}: cores {bad} are not on this machine")
        self.cores[tenant] = list(cores)

    def set_llc_ways(self, tenant, ways):
        self._check(tenant)
        self.ways[tenant] = ways
        return {"llc_partitioning": "unavailable"}

    def stats(self, window_s=None):
        self.windows.append(window_s)
        qps = float("nan") if getattr(self, "nan_qps", False) else 12.5
        return {n: TenantSnapshot(tenant=n, model=t["model"], completed_qps=qps, offered_qps=13.0, latency_ms_p50=1.5,
                                  latency_ms_p95=3.25, latency_ms_p99=4.0, queued_queries=len(self.held[n]),
                                  in_flight_queries=len(self.held[n]), worker_utilisation=0.5,
                                  workers_ready=self.workers[n], cores=tuple(self.cores[n]), llc_ways=self.ways.get(n),
                                  completed_queries=self.calls[n])
                for n, t in self.infos.items()}


# ------------------------------------------------------------------------------------------------ helpers


def serve(node, scenario):
    """Run ``await scenario(client)`` against ``make_app(node)`` on an ephemeral loopback port."""
    async def main():
        async with TestClient(TestServer(make_app(node), host="127.0.0.1")) as client:
            return await scenario(client)
    return asyncio.run(main())


def rmc_body(n=3, seed=1, **extra):
    rng = np.random.default_rng(seed)
    dense = rng.random((n, 4), dtype=np.float32)
    ids = np.concatenate([rng.integers(0, 100, (n, 2)), rng.integers(0, 50, (n, 3))], axis=1)
    body = {"inputs": [
        {"name": "dense", "shape": [n, 4], "datatype": "FP32", "data": dense.reshape(-1).tolist()},
        {"name": "sparse_ids", "shape": [n, 5], "datatype": "INT64", "data": ids.tolist()},
    ], **extra}
    return body, dense, ids


async def post_error(client, path, status, match, **kw):
    resp = await client.post(path, **kw)
    body = await resp.json()
    assert resp.status == status, body
    assert set(body) == {"error"} and "\n" not in body["error"]
    assert re.search(match, body["error"]), body["error"]
    return body["error"]


# ------------------------------------------------------------------------------------------------ tests


def test_health_and_metadata():
    node = FakeNode()

    async def scenario(client):
        assert (await client.get("/v2/health/live")).status == 200
        resp = await client.get("/v2/health/ready")
        assert resp.status == 200 and (await resp.json())["ready"] is True
        meta = await (await client.get("/v2")).json()
        assert meta["name"] == "hera" and "binary_tensor_data" in meta["extensions"]

        m = await (await client.get("/v2/models/rmc")).json()
        assert m["name"] == "rmc" and m["platform"] == "torchrec"
        assert m["inputs"] == [{"name": "dense", "datatype": "FP32", "shape": [-1, 4]},
                               {"name": "sparse_ids", "datatype": "INT64", "shape": [-1, 5]}]
        assert m["outputs"] == [{"name": "scores", "datatype": "FP32", "shape": [-1, 1]}]
        assert m["parameters"]["tables"][1] == {"name": "t1", "rows": 50, "lookups": 3}
        ncf = await (await client.get("/v2/models/ncf/versions/1")).json()
        assert [i["name"] for i in ncf["inputs"]] == ["sparse_ids"] and ncf["outputs"][0]["shape"] == [-1, 2]
        assert (await client.get("/v2/models/rmc/ready")).status == 200

        node.workers["ncf"] = 0  # no ready worker
        assert (await client.get("/v2/models/ncf/ready")).status == 503
        resp = await client.get("/v2/health/ready")
        assert resp.status == 503 and "ncf" in (await resp.json())["error"]

        for path in ("/v2/models/nope", "/v2/models/nope/ready", "/v2/models/rmc/versions/7"):
            resp = await client.get(path)
            error = (await resp.json())["error"]
            assert resp.status == 404 and ("nope" in error or "version" in error), (path, resp.status, error)
        resp = await client.get("/v2/no/such/path")
        assert resp.status == 404 and (await resp.json())["error"] == "no endpoint GET /v2/no/such/path"
        resp = await client.get("/v2/models/rmc/infer")
        assert resp.status == 405 and "method GET is not allowed" in (await resp.json())["error"]
        assert resp.headers["Allow"] == "POST"

    serve(node, scenario)


def test_infer_json_and_sample_form():
    node = FakeNode()

    async def scenario(client):
        body, dense, ids = rmc_body(n=3, id="q-1")
        resp = await client.post("/v2/models/rmc/infer", json=body)
        out = await resp.json()
        assert resp.status == 200, out
        assert out["model_name"] == "rmc" and out["id"] == "q-1"
        (scores,) = out["outputs"]
        assert scores["name"] == "scores" and scores["datatype"] == "FP32" and scores["shape"] == [3, 1]
        got = np.asarray(scores["data"]).reshape(3, 1)
        np.testing.assert_allclose(got, fake_scores(dense, ids, 1), rtol=1e-6)
        assert out["parameters"]["queue_ms"] >= 0 and out["parameters"]["workers"] == [0]

        # NCF: no dense input, two outputs, nested data, explicit JSON output request
        ids = [[1, 2], [3, 4], [29, 39]]
        resp = await client.post("/v2/models/ncf/infer", json={
            "inputs": [{"name": "sparse_ids", "shape": [3, 2], "datatype": "INT64", "data": ids}],
            "outputs": [{"name": "scores", "parameters": {"binary_data": False}}]})
        out = await resp.json()
        assert resp.status == 200 and out["outputs"][0]["shape"] == [3, 2]
        np.testing.assert_allclose(np.asarray(out["outputs"][0]["data"]).reshape(3, 2),
                                   fake_scores(np.zeros((3, 0), np.float32), np.asarray(ids), 2), rtol=1e-6)

        # sample-library fast path → node.submit
        resp = await client.post("/v2/models/rmc/infer", json={"inputs": [
            {"name": "sample_start", "shape": [1], "datatype": "INT64", "data": [10]},
            {"name": "n_items", "shape": [1], "datatype": "INT64", "data": [5]}]})
        out = await resp.json()
        assert resp.status == 200 and out["outputs"][0]["shape"] == [5, 1]
        d, i = node.library["rmc"]
        np.testing.assert_allclose(np.asarray(out["outputs"][0]["data"]).reshape(5, 1),
                                   fake_scores(d[10:15], i[10:15], 1), rtol=1e-6)

    serve(node, scenario)


def test_infer_binary_extension():
    node = FakeNode()

    async def scenario(client):
        rng = np.random.default_rng(3)
        dense = rng.random((4, 4), dtype=np.float32)
        ids = np.concatenate([rng.integers(0, 100, (4, 2)), rng.integers(0, 50, (4, 3))], axis=1)
        header = json.dumps({"inputs": [
            {"name": "dense", "shape": [4, 4], "datatype": "FP32",
             "parameters": {"binary_data_size": dense.nbytes}},
            {"name": "sparse_ids", "shape": [4, 5], "datatype": "INT64",
             "parameters": {"binary_data_size": ids.nbytes}}],
            "outputs": [{"name": "scores", "parameters": {"binary_data": True}}]}).encode()
        data = header + dense.tobytes() + ids.tobytes()
        resp = await client.post("/v2/models/rmc/infer", data=data,
                                 headers={"Inference-Header-Content-Length": str(len(header))})
        raw = await resp.read()
        assert resp.status == 200, raw
        hlen = int(resp.headers["Inference-Header-Content-Length"])
        out = kserve.decode_infer_response(raw, hlen)
        np.testing.assert_array_equal(out["scores"], fake_scores(dense, ids, 1))

        await post_error(client, "/v2/models/rmc/infer", 400, "binary data is truncated", data=data[:-8],
                         headers={"Inference-Header-Content-Length": str(len(header))})
        await post_error(client, "/v2/models/rmc/infer", 400, "follow the last binary input",
                         data=data + b"xx", headers={"Inference-Header-Content-Length": str(len(header))})
        await post_error(client, "/v2/models/rmc/infer", 400, "outside the body",
                         data=data, headers={"Inference-Header-Content-Length": str(len(data) + 1)})
        await post_error(client, "/v2/models/rmc/infer", 400, "must be an integer",
                         data=data, headers={"Inference-Header-Content-Length": "abc"})
        await post_error(client, "/v2/models/rmc/infer", 400, "no Inference-Header-Content-Length",
                         data=header)

    serve(node, scenario)


def _scalar(name, value):
    return {"name": name, "shape": [1], "datatype": "INT64", "data": [value]}


def _with_input(body, name, **changes):
    body = json.loads(json.dumps(body))
    for item in body["inputs"]:
        if item["name"] == name:
            item.update(changes)
    return body


@pytest.mark.parametrize("case", [
    "malformed", "not_object", "no_inputs", "missing_sparse", "missing_dense", "unknown_input", "dense_dtype",
    "ids_dtype", "ids_float_data", "dense_shape", "ids_shape", "rank", "size_mismatch", "n_mismatch",
    "ids_high", "ids_negative", "n_zero", "oversized", "nan", "unknown_output", "duplicate", "ragged",
    "mixed_forms",
    "sample_missing", "sample_outside", "sample_beyond", "sample_shape", "sample_oversized", "bad_datatype",
    "deep_nesting",
])
def test_bad_requests_get_400_and_never_reach_the_node(case):
    node = FakeNode()
    good, dense, ids = rmc_body(n=3)
    n0 = {"name": "sparse_ids", "shape": [0, 5], "datatype": "INT64", "data": []}
    cases = {
        "malformed": ("{not json", "malformed JSON"),
        "not_object": ([1, 2], "JSON object"),
        "no_inputs": ({"inputs": []}, "non-empty 'inputs'"),
        "missing_sparse": ({"inputs": good["inputs"][:1]}, "missing input 'sparse_ids'"),
        "missing_dense": ({"inputs": good["inputs"][1:]}, "missing input 'dense'"),
        "unknown_input": ({"inputs": good["inputs"] + [{"name": "extra", "shape": [1], "datatype": "FP32",
                                                         "data": [1.0]}]}, "unknown input 'extra'"),
        "dense_dtype": (_with_input(good, "dense", datatype="FP64"), "'dense' must be FP32, got FP64"),
        "ids_dtype": (_with_input(good, "sparse_ids", datatype="INT32"), "'sparse_ids' must be INT64"),
        "ids_float_data": (_with_input(good, "sparse_ids", data=[0.5] * 15), "INT64 data must be integers"),
        "dense_shape": (_with_input(good, "dense", shape=[4, 3]), r"must have shape \[n, 4\], got \[4, 3\]"),
        "ids_shape": (_with_input(good, "sparse_ids", shape=[5, 3]), r"must have shape \[n, 5\]"),
        "rank": (_with_input(good, "sparse_ids", shape=[15]), r"must have shape \[n, 5\], got \[15\]"),
        "size_mismatch": (_with_input(good, "dense", shape=[3, 5]), "has 12 elements but shape"),
        "n_mismatch": (_with_input(_with_input(good, "dense", shape=[2, 4], data=[0.0] * 8), "dense"),
                       "disagree on n"),
        "ids_high": (_with_input(good, "sparse_ids", data=[[0, 0, 0, 0, 50]] * 3),
                     r"sparse_ids\[0, 4\] = 50 is outside table 't1' rows \[0, 50\)"),
        "ids_negative": (_with_input(good, "sparse_ids", data=[[0, 0, 0, 0, 0]] * 2 + [[0, -1, 0, 0, 0]]),
                         r"sparse_ids\[2, 1\] = -1 is outside table 't0'"),
        "n_zero": ({"inputs": [{"name": "dense", "shape": [0, 4], "datatype": "FP32", "data": []}, n0]},
                   "at least 1 item"),
        "oversized": ({"inputs": [
            {"name": "dense", "shape": [65, 4], "datatype": "FP32", "data": [0.0] * 260},
            {"name": "sparse_ids", "shape": [65, 5], "datatype": "INT64", "data": [0] * 325}]},
            "65 items exceeds max_items=64"),
        "nan": (_with_input(good, "dense", data=[float("nan")] + [0.0] * 11), "NaN"),
        "unknown_output": ({**good, "outputs": [{"name": "probabilities"}]},
                           "unknown output 'probabilities'"),
        "duplicate": ({"inputs": good["inputs"] + good["inputs"][:1]}, "given twice"),
        "ragged": (_with_input(good, "sparse_ids", data=[[0, 1], [2]]), "ragged"),
        "mixed_forms": ({"inputs": good["inputs"] + [
            {"name": "sample_start", "shape": [1], "datatype": "INT64", "data": [0]},
            {"name": "n_items", "shape": [1], "datatype": "INT64", "data": [1]}]}, "not both"),
        "sample_missing": ({"inputs": [_scalar("sample_start", 0)]}, "missing input 'n_items'"),
        "sample_outside": ({"inputs": [_scalar("sample_start", -1), _scalar("n_items", 1)]},
                           "sample_start must be >= 0"),
        "sample_beyond": ({"inputs": [_scalar("sample_start", 200), _scalar("n_items", 1)]},
                          r"outside the sample library .*0\.\.199"),
        "sample_shape": ({"inputs": [
            {"name": "sample_start", "shape": [2], "datatype": "INT64", "data": [0, 1]},
            {"name": "n_items", "shape": [1], "datatype": "INT64", "data": [1]}]}, "exactly one value"),
        "sample_oversized": ({"inputs": [
            {"name": "sample_start", "shape": [1], "datatype": "INT64", "data": [0]},
            {"name": "n_items", "shape": [1], "datatype": "INT64", "data": [65]}]}, "exceeds max_items=64"),
        "bad_datatype": (_with_input(good, "dense", datatype="FLOAT"), "unsupported datatype 'FLOAT'"),
        "deep_nesting": ('{"inputs": ' + "[" * 100_000 + "]" * 100_000 + "}", "nested too deeply"),  # was a 500
    }
    body, match = cases[case]
    kw = {"data": body} if isinstance(body, str) else {"json": body}

    async def scenario(client):
        await post_error(client, "/v2/models/rmc/infer", 400, match, **kw)

    serve(node, scenario)
    assert node.calls == {"rmc": 0, "ncf": 0}


def test_bad_content_encoding_gets_400_and_never_reaches_the_node():
    """A gzip/deflate body that does not decode, a coding we do not decode, or a list of codings: 400 with a
    one-line JSON error (a corrupt gzip body was a 500). Good gzip and deflate bodies are served."""
    import gzip
    import zlib

    node = FakeNode()
    raw = json.dumps(rmc_body()[0]).encode()

    async def scenario(client):
        async def post(enc, data):
            resp = await client.post("/v2/models/rmc/infer", data=data, headers={"Content-Encoding": enc})
            return resp.status, (await resp.json()).get("error", "")

        assert (await post("gzip", gzip.compress(raw)))[0] == 200
        assert (await post("deflate", zlib.compress(raw)))[0] == 200
        z = gzip.compress(raw)
        for enc, data, match in [
            ("gzip", b"\x1f\x8b\x08\x00" + b"garbage" * 20, "cannot be decoded (Content-Encoding 'gzip')"),
            ("gzip", z[:40] + bytes([z[40] ^ 0xFF]) + z[41:], "cannot be decoded"),
            ("gzip", raw, "cannot be decoded"),
            ("deflate", b"not deflate at all", "cannot be decoded (Content-Encoding 'deflate')"),
            ("compress", raw, "unsupported Content-Encoding 'compress'"),
            ("gzip, deflate", raw, "unsupported Content-Encoding 'gzip, deflate'"),
        ]:
            status, err = await post(enc, data)
            assert status == 400 and match in err and "\n" not in err, (enc, status, err)

    serve(node, scenario)
    assert node.calls == {"rmc": 2, "ncf": 0}


def test_node_errors_map_to_status_codes():
    node = FakeNode(queue_limit=2)

    async def scenario(client):
        body, _, _ = rmc_body()
        await post_error(client, "/v2/models/nope/infer", 404, "unknown model 'nope'", json=body)
        # node-side bad request (sample range outside the library) → 400
        await post_error(client, "/v2/models/rmc/infer", 400, "at most 10 items", json={"inputs": [
            {"name": "sample_start", "shape": [1], "datatype": "INT64", "data": [195]},
            {"name": "n_items", "shape": [1], "datatype": "INT64", "data": [11]}]})
        # a failed query (dead worker) → 500 with its message
        node.fail.add("rmc")
        await post_error(client, "/v2/models/rmc/infer", 500, "query failed: worker 3 died", json=body)
        node.fail.clear()
        # full queue → 503, while the held queries complete normally once released
        node.hold.add("rmc")
        pending = [asyncio.ensure_future(client.post("/v2/models/rmc/infer", json=body)) for _ in range(2)]
        while len(node.held["rmc"]) < 2:
            await asyncio.sleep(0.01)
        await post_error(client, "/v2/models/rmc/infer", 503, "queue is full", json=body)
        # the other tenant still serves while rmc's queries wait (the event loop is not blocked)
        resp = await client.post("/v2/models/ncf/infer", json={
            "inputs": [{"name": "sparse_ids", "shape": [1, 2], "datatype": "INT64", "data": [1, 1]}]})
        assert resp.status == 200
        assert not any(p.done() for p in pending)
        node.release("rmc")
        node.reject_async.add("ncf")
        await post_error(client, "/v2/models/ncf/infer", 503, "queue is full", json={
            "inputs": [{"name": "sparse_ids", "shape": [1, 2], "datatype": "INT64", "data": [1, 1]}]})
        for p in pending:
            resp = await p
            assert resp.status == 200 and (await resp.json())["outputs"][0]["shape"] == [3, 1]

    serve(node, scenario)


def test_garbage_for_one_tenant_does_not_affect_the_other():
    node = FakeNode()
    garbage = [b"", b"\x00\xff" * 100, b'{"inputs": 5}', b"[[[", json.dumps({"inputs": [
        {"name": "sparse_ids", "shape": [1, 2], "datatype": "INT64", "data": [10**6, -5]}]}).encode(),
        json.dumps({"inputs": [{"name": "sparse_ids", "shape": [100, 2], "datatype": "INT64",
                                "data": [0] * 200}]}).encode()]

    async def scenario(client):
        body, dense, ids = rmc_body(n=2)
        expected = fake_scores(dense, ids, 1)
        tasks = []
        for i in range(30):
            tasks.append(client.post("/v2/models/ncf/infer", data=garbage[i % len(garbage)]))
            tasks.append(client.post("/v2/models/rmc/infer", json=body))
        responses = await asyncio.gather(*tasks)
        for i, resp in enumerate(responses):
            out = await resp.json()
            if i % 2 == 0:
                assert resp.status == 400 and "error" in out
            else:
                assert resp.status == 200
                got = np.asarray(out["outputs"][0]["data"]).reshape(2, 1)
                np.testing.assert_allclose(got, expected, rtol=1e-6)

    serve(node, scenario)
    assert node.calls == {"rmc": 30, "ncf": 0}


def test_metrics_stats_and_control_api():
    node = FakeNode()

    async def scenario(client):
        body, _, _ = rmc_body()
        assert (await client.post("/v2/models/rmc/infer", json=body)).status == 200
        stats = await (await client.get("/hera/v1/stats")).json()
        assert stats["rmc"]["cores"] == [0] and stats["ncf"]["completed_qps"] == 12.5
        assert stats["ncf"]["offered_qps"] == 13.0 and TenantSnapshot.from_dict(stats["ncf"]) == node.stats()["ncf"]
        node.nan_qps = True  # strict JSON: NaN goes out as null
        resp = await client.get("/hera/v1/stats?window_s=0.25")
        assert json.loads(await resp.text())["rmc"]["completed_qps"] is None
        assert node.windows[0] is None and 0.25 in node.windows
        node.nan_qps = False
        for bad in ("0", "-1", "nan", "x"):
            resp = await client.get(f"/hera/v1/stats?window_s={bad}")
            assert resp.status == 400 and "window_s must be a number of seconds > 0" in (await resp.json())["error"]

        resp = await client.post("/hera/v1/tenants/rmc/resize", json={"cores": [1, 0]})
        assert resp.status == 200 and (await resp.json())["cores"] == [0, 1]
        assert node.cores["rmc"] == [1, 0]
        resp = await client.post("/hera/v1/tenants/ncf/llc", json={"ways": 3})
        out = await resp.json()
        assert resp.status == 200 and out["ways"] == 3
        assert out["result"] == {"llc_partitioning": "unavailable"}
        assert node.ways == {"ncf": 3}

        for path, payload, match in [
            ("/hera/v1/tenants/rmc/resize", {"cores": []}, "non-empty list"),
            ("/hera/v1/tenants/rmc/resize", {"cores": [0, 0]}, "twice"),
            ("/hera/v1/tenants/rmc/resize", {"cores": ["a"]}, "non-empty list"),
            ("/hera/v1/tenants/rmc/resize", {"cores": [1], "x": 1}, "unknown key 'x'"),
            ("/hera/v1/tenants/rmc/resize", {}, "missing key 'cores'"),
            ("/hera/v1/tenants/rmc/llc", {"ways": 0}, "integer >= 1"),
            ("/hera/v1/tenants/rmc/llc", {"ways": True}, "integer >= 1"),
            ("/hera/v1/tenants/rmc/llc", [3], "JSON object"),
            ("/hera/v1/tenants/rmc/membw", {"percent": 101}, "1..100"),
        ]:
            await post_error(client, path, 400, match, json=payload)
        await post_error(client, "/hera/v1/tenants/rmc/resize", 400, "malformed JSON", data=b"{")
        await post_error(client, "/hera/v1/tenants/rmc/llc", 400, "empty body", data=b"")
        await post_error(client, "/hera/v1/tenants/rmc/resize", 409, r"cores \[9\] are not on this machine",
                         json={"cores": [0, 9]})
        await post_error(client, "/hera/v1/tenants/zzz/resize", 404, "unknown tenant 'zzz'",
                         json={"cores": [0]})
        await post_error(client, "/hera/v1/tenants/rmc/membw", 501, "memory bandwidth", json={"percent": 50})

        resp = await client.get("/metrics")
        assert resp.status == 200 and resp.content_type == "text/plain"
        return await resp.text()

    text = serve(node, scenario)
    check_exposition(text)
    assert 'hera_tenant_qps{tenant="rmc"} 12.5' in text
    assert 'hera_tenant_latency_ms{tenant="rmc",quantile="0.95"} 3.25' in text
    assert 'hera_tenant_queue_length{tenant="ncf"} 0' in text
    assert re.search(r'^hera_tenant_(n_)?cores\{tenant="rmc"\} 2$', text, re.M)
    assert re.search(r'^hera_tenant_(worker_)?utilisation\{tenant="ncf"\} 0.5$', text, re.M)
    assert 'hera_tenant_llc_ways{tenant="ncf"} 3' in text
    assert 'hera_http_requests_total{route="/v2/models/{name}/infer",code="200"} 1' in text
    assert 'hera_http_requests_total{route="/hera/v1/tenants/{name}/resize",code="400"} 6' in text


_SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{([a-zA-Z_][a-zA-Z0-9_]*="([^"\\]|\\.)*",?)*\})? '
                     r'(-?[0-9.e+-]+|NaN|[+-]Inf)$')


def check_exposition(text: str) -> None:
    """Every line is a HELP/TYPE comment or a well-formed sample of a family declared by a TYPE line."""
    typed = set()
    assert text.endswith("\n")
    for line in text.strip().splitlines():
        if line.startswith("# TYPE "):
            name, kind = line.split()[2:4]
            assert kind in {"gauge", "counter", "summary", "histogram", "untyped"}, line
            typed.add(name)
        elif not line.startswith("# HELP "):
            m = _SAMPLE.match(line)
            assert m, line
            assert re.sub(r"_(count|sum|bucket)$", "", m.group(1)) in typed or m.group(1) in typed, line


def test_metrics_page_is_the_node_renderer_plus_http_counters():
    """/metrics reuses hera.server.stats.render_prometheus for the node's part (one renderer), then appends
    the front end's counters."""
    node = FakeNode()

    async def scenario(client):
        return await (await client.get("/metrics")).text()

    text = serve(node, scenario)
    check_exposition(text)
    node_part = render_prometheus(node.stats())
    assert text.startswith(node_part)
    assert "hera_http_requests_total" in text[len(node_part):] and "hera_tenant" not in text[len(node_part):]


def test_future_completed_from_another_thread():
    """The node resolves futures on its own thread; the handler must await without blocking the loop."""
    node = FakeNode()
    node.hold.add("rmc")

    async def scenario(client):
        body, _, _ = rmc_body()
        timer = threading.Timer(0.2, node.release, args=("rmc",))
        timer.start()
        t0 = time.perf_counter()
        live = []
        task = asyncio.ensure_future(client.post("/v2/models/rmc/infer", json=body))
        while not task.done():
            live.append((await client.get("/v2/health/live")).status)
            await asyncio.sleep(0.02)
        timer.join()
        resp = task.result()
        assert resp.status == 200 and time.perf_counter() - t0 >= 0.15
        assert len(live) >= 2 and set(live) == {200}

    serve(node, scenario)
