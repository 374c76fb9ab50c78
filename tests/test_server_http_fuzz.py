"""Fuzzing the HTTP front end of a real node: thousands of malformed requests, no 5xx, nothing reaches a worker.

One seeded generator builds >= 2,000 requests that are each wrong in one way — bodies (random bytes, truncated
or non-object JSON, deep nesting), headers (the binary-extension length, oversized values), encodings (corrupt or
unsupported ``Content-Encoding``, a gzip bomb), JSON shapes, datatypes, tensor shapes, ids and sample ranges out of
range, unknown tenants, versions, paths and methods, control-API bodies, oversized bodies — and sends them to
tenant ``a`` of a running synthetic node while another thread sends valid queries to tenant ``b``. Every
malformed request must get a 4xx; tenant ``b`` must get every answer right; the server must still be ready and
tenant ``a`` must serve a valid query afterwards, its workers never having seen the garbage.
"""

from __future__ import annotations

import asyncio
import gzip
import json
import threading
import urllib.request
import zlib
from collections import Counter

import aiohttp
import numpy as np
import pytest

from hera.server import Node
from hera.server.config import usable_cpus
from hera.server.http import BackgroundServer

pytestmark = pytest.mark.slow

A = {"dense_in": 4, "n_ids": 2, "rows": 50, "library_items": 128}
B = {"dense_in": 3, "n_ids": 2, "rows": 40, "library_items": 64}
MAX_ITEMS = 16
MAX_BODY = 64 * 1024  # small, so that "oversized" is cheap to send
N_REQUESTS = 2100


@pytest.fixture(scope="module")
def served():
    cpus = usable_cpus()
    config = {
        "runner": "synthetic", "scale": "ci", "allow_core_sharing": True, "start_timeout_s": 120,
        "tenants": [
            {"name": "a", "model": "syn_a", "cores": [cpus[0]], "max_items": MAX_ITEMS, "batch_size": 8,
             "queue_limit": 64, "options": A},
            {"name": "b", "model": "syn_b", "cores": [cpus[-1]], "max_items": MAX_ITEMS, "batch_size": 8,
             "queue_limit": 64, "options": B},
        ],
    }
    node = Node(config).start()
    try:
        with BackgroundServer(node, max_body_bytes=MAX_BODY) as srv:
            yield node, srv
    finally:
        node.stop(drain=False)


# ------------------------------------------------------------------------------------------------ generator
def _tensor(name, shape, datatype, data):
    return {"name": name, "shape": shape, "datatype": datatype, "data": data}


def valid_tensors(rng, n=None):
    """A valid tensor-form body for tenant a (the base every mutation breaks)."""
    n = int(rng.integers(1, MAX_ITEMS + 1)) if n is None else n
    dense = rng.random((n, A["dense_in"])).round(3).tolist()
    ids = rng.integers(0, A["rows"], (n, A["n_ids"])).tolist()
    return {"inputs": [_tensor("dense", [n, A["dense_in"]], "FP32", dense),
                       _tensor("sparse_ids", [n, A["n_ids"]], "INT64", ids)]}


def sample_body(start, n, dt_start="INT64", dt_n="INT64"):
    return {"inputs": [_tensor("sample_start", [1], dt_start, [start]), _tensor("n_items", [1], dt_n, [n])]}


def _j(obj) -> bytes:
    return json.dumps(obj).encode()


INFER = "/v2/models/a/infer"


def malformed_requests(rng):  # noqa: C901 - one generator, one branch per kind of damage
    """``[(kind, method, path, headers, body)]``: each request malformed in one way."""
    out = []

    def pick(seq):
        return seq[int(rng.integers(0, len(seq)))]

    def add(kind, body, path=INFER, method="POST", headers=None):
        out.append((kind, method, path, headers or {}, body))

    kinds = []

    def kind(f):
        kinds.append(f)
        return f

    @kind
    def random_bytes():
        add("body: random bytes", rng.bytes(int(rng.integers(1, 3000))))

    @kind
    def truncated_json():
        raw = _j(valid_tensors(rng))
        add("body: truncated JSON", raw[: int(rng.integers(0, len(raw) - 1))])

    @kind
    def not_an_object():
        choice = rng.integers(0, 6)
        body = [[], "inputs", 42, None, True, [valid_tensors(rng)]][choice]
        add("body: JSON that is not an object", _j(body))

    @kind
    def deep_nesting():
        depth = pick([1_000, 10_000, 100_000])
        key = pick(["", '{"inputs": '])
        body = key + "[" * depth + "]" * depth + ("}" if key else "")
        add("body: deeply nested JSON", body.encode())

    @kind
    def bad_inputs_field():
        b = valid_tensors(rng)
        v = [None, {}, [], "dense", 3, [1, 2], [{"name": 3}], [{"shape": [1]}]][rng.integers(0, 8)]
        if rng.random() < 0.2:
            del b["inputs"]
            b["input"] = v
        else:
            b["inputs"] = v
        add("json: inputs missing or malformed", _j(b))

    @kind
    def bad_entry():
        b = valid_tensors(rng)
        t = b["inputs"][int(rng.integers(0, 2))]
        what = rng.integers(0, 6)
        if what == 0:
            del t["shape"]
        elif what == 1:
            del t["datatype"]
        elif what == 2:
            del t["data"]
        elif what == 3:
            t["name"] = ["dense"]
        elif what == 4:
            b["inputs"].append(dict(t))  # the same input twice
        else:
            t["parameters"] = [1]
        add("json: input entry malformed", _j(b))

    @kind
    def unknown_input():
        b = valid_tensors(rng)
        b["inputs"].append(_tensor(f"extra{rng.integers(0, 99)}", [1], "INT64", [1]))
        add("json: unknown input name", _j(b))

    @kind
    def bad_top_level():
        b = valid_tensors(rng)
        what = rng.integers(0, 4)
        if what == 0:
            b["id"] = int(rng.integers(0, 10))
        elif what == 1:
            b["parameters"] = [1, 2]
        elif what == 2:
            b["outputs"] = [{"name": "logits"}]
        else:
            b["outputs"] = "scores"
        add("json: id/parameters/outputs malformed", _j(b))

    @kind
    def bad_datatype():
        b = valid_tensors(rng)
        t = b["inputs"][int(rng.integers(0, 2))]
        want = t["datatype"]
        choices = ["FP16", "FP64", "INT32", "INT8", "UINT64", "BOOL", "BYTES", "fp32", "int64", "STRING", 7, None]
        t["datatype"] = pick([c for c in choices if c != want])
        add("datatype: wrong or unknown", _j(b))

    @kind
    def bad_shape():
        b = valid_tensors(rng)
        t = b["inputs"][int(rng.integers(0, 2))]
        n, w = t["shape"]
        t["shape"] = [[n + 1, w], [n, w + 1], [n * w], [n, w, 1], [-n, w], "n,w", [n, "w"], [2**40, w],
                      [n, 0]][rng.integers(0, 9)]
        add("shape: does not match the data or the model", _j(b))

    @kind
    def bad_data():
        b = valid_tensors(rng)
        t = b["inputs"][int(rng.integers(0, 2))]
        what = rng.integers(0, 6)
        if what == 0:
            t["data"][0][0] = "x"
        elif what == 1:
            t["data"][0] = t["data"][0][:-1]  # ragged
        elif what == 2:
            t["data"] = {"values": t["data"]}
        elif what == 3:
            t["data"][0][0] = None
        elif what == 4:
            t["data"][0][0] = [1, 2]
        else:
            t["data"] = t["data"][:-1] if len(t["data"]) > 1 else []
        add("data: wrong element types or counts", _j(b))

    @kind
    def non_finite_or_huge():
        b = valid_tensors(rng)
        what = rng.integers(0, 4)
        if what == 0:  # Python's json writes NaN / Infinity tokens; the server must refuse them in dense
            b["inputs"][0]["data"][0][0] = pick([float("nan"), float("inf"), float("-inf")])
            raw = json.dumps(b).encode()
        elif what == 1:
            raw = _j(b).replace(b'"data": [[', b'"data": [[1e400, ', 1)  # an extra, infinite value
        elif what == 2:
            b["inputs"][1]["data"][0][0] = 2**70
            raw = _j(b)
        else:
            b["inputs"][1]["data"][0][0] = 1.5
            raw = _j(b)
        add("data: NaN, infinity, overflow, fractional ids", raw)

    @kind
    def ids_out_of_range():
        b = valid_tensors(rng)
        ids = b["inputs"][1]["data"]
        ids[int(rng.integers(0, len(ids)))][int(rng.integers(0, A["n_ids"]))] = pick(
            [A["rows"], A["rows"] + int(rng.integers(1, 10**6)), -1, -int(rng.integers(2, 10**6))])
        add("ids: out of the table's rows", _j(b))

    @kind
    def item_count():
        n = pick([0, MAX_ITEMS + 1, MAX_ITEMS + int(rng.integers(2, 40))])
        if n == 0:
            b = {"inputs": [_tensor("dense", [0, A["dense_in"]], "FP32", []),
                            _tensor("sparse_ids", [0, A["n_ids"]], "INT64", [])]}
        else:
            b = valid_tensors(rng, n)
        add("shape: 0 or more than max_items items", _j(b))

    @kind
    def sample_range():
        lib = A["library_items"]
        what = rng.integers(0, 6)
        if what == 0:
            b = sample_body(-int(rng.integers(1, 100)), 1)
        elif what == 1:
            b = sample_body(lib + int(rng.integers(0, 1000)), 1)
        elif what == 2:
            b = sample_body(0, pick([0, -1, MAX_ITEMS + 1, 10**9]))
        elif what == 3:
            b = sample_body(0, 1, dt_start="FP32")
        elif what == 4:
            b = sample_body(0, 1)
            b["inputs"][0]["shape"], b["inputs"][0]["data"] = [2], [0, 1]
        else:
            b = sample_body(0, 1)
            b["inputs"] += valid_tensors(rng)["inputs"]  # both forms at once
        add("sample form: out of range or malformed", _j(b))

    @kind
    def binary_extension():
        b = valid_tensors(rng, 2)
        dense = np.asarray(b["inputs"][0]["data"], np.float32)
        b["inputs"][0] = {"name": "dense", "shape": [2, A["dense_in"]], "datatype": "FP32",
                          "parameters": {"binary_data_size": dense.nbytes}}
        head = _j(b)
        what = rng.integers(0, 6)
        hlen, tail = len(head), dense.tobytes()
        if what == 0:
            hlen = "twelve"
        elif what == 1:
            hlen = -int(rng.integers(1, 50))
        elif what == 2:
            hlen = len(head) + len(tail) + int(rng.integers(1, 100))
        elif what == 3:
            tail = tail[: int(rng.integers(0, len(tail)))]  # truncated
        elif what == 4:
            tail = tail + rng.bytes(int(rng.integers(1, 64)))  # bytes after the last binary input
        else:
            hlen = None  # binary_data_size without the header
        headers = {} if hlen is None else {"Inference-Header-Content-Length": str(hlen)}
        add("header: binary extension length or data wrong", head + tail, headers=headers)

    @kind
    def bad_encoding():
        raw = _j(valid_tensors(rng))
        what = rng.integers(0, 7)
        if what == 0:
            enc, body = "gzip", b"\x1f\x8b\x08\x00" + rng.bytes(int(rng.integers(4, 400)))
        elif what == 1:
            enc, body = "deflate", rng.bytes(int(rng.integers(4, 400)))
        elif what == 2:
            enc, body = "gzip", raw  # declared but not compressed
        elif what == 3:
            enc, body = pick(["compress", "foo", "gzip, deflate", "x-gzip;q=1", "*"]), raw
        elif what == 4:
            z = gzip.compress(raw)
            cut = int(rng.integers(11, len(z) - 1))
            enc, body = "gzip", z[:cut] + bytes([z[cut] ^ 0xFF]) + z[cut + 1:]  # one flipped byte
        elif what == 5:
            enc, body = "gzip", gzip.compress(b'{"inputs": ' + rng.bytes(200) + b"}")  # decodes to garbage
        else:
            enc, body = "deflate", zlib.compress(b" " * (4 * MAX_BODY))  # a small bomb: too large decoded
        add("encoding: corrupt, unsupported or too large decoded", body, headers={"Content-Encoding": enc})

    @kind
    def oversized():
        n = MAX_BODY + int(rng.integers(1, 3 * MAX_BODY))
        add("size: body over the limit", b'{"inputs": [' + b" " * n + b"]}")

    @kind
    def oversized_header():
        add("header: value over the parser's limit", _j(valid_tensors(rng)),
            headers={"X-Junk": "j" * int(rng.integers(9_000, 20_000))})

    @kind
    def unknown_tenant():
        name = pick(["zzz", "A", "a_", "b-a", "..", "a.b", "rmc1"]) + str(rng.integers(0, 99))
        add("path: unknown tenant", _j(valid_tensors(rng)), path=f"/v2/models/{name}/infer")

    @kind
    def unknown_version():
        v = pick(["2", "0", "latest", "1.0", "-1"])
        add("path: unknown model version", _j(valid_tensors(rng)), path=f"/v2/models/a/versions/{v}/infer")

    @kind
    def unknown_path_or_method():
        what = rng.integers(0, 4)
        if what == 0:
            add("path: no such endpoint", b"{}", path=f"/v2/{rng.integers(0, 10**6)}/x", method="POST")
        elif what == 1:
            add("method: not allowed", None, path=INFER, method=pick(["GET", "PUT", "DELETE", "PATCH"]))
        elif what == 2:
            add("method: not allowed", b"{}", path="/v2/health/live", method="POST")
        else:
            add("path: no such endpoint", None, path="/hera/v1/" + str(rng.integers(0, 999)), method="GET")

    @kind
    def control_api():
        what = rng.integers(0, 8)
        if what == 0:
            add("control: bad resize", _j({"cores": pick([[], [-1], ["0"], [0, 0], 3])}),
                path="/hera/v1/tenants/a/resize")
        elif what == 1:
            add("control: resize to cores this machine lacks", _j({"cores": [10**6 + int(rng.integers(0, 99))]}),
                path="/hera/v1/tenants/a/resize")
        elif what == 2:
            add("control: bad llc ways", _j({"ways": pick([0, -2, "4", True, 1.5])}),
                path="/hera/v1/tenants/a/llc")
        elif what == 3:
            add("control: bad membw", _j({"percent": pick([0, 101, -5])}), path="/hera/v1/tenants/a/membw")
        elif what == 4:
            add("control: unknown key", _j({"cores": [0], "ways": 2}), path="/hera/v1/tenants/a/resize")
        elif what == 5:
            add("control: unknown tenant", _j({"ways": 2}), path=f"/hera/v1/tenants/zz{rng.integers(0, 99)}/llc")
        elif what == 6:
            add("control: body not an object", rng.bytes(20), path="/hera/v1/tenants/a/llc")
        else:
            add("control: bad stats window", None, method="GET",
                path=f"/hera/v1/stats?window_s={pick(['0', '-1', 'nan', 'inf', 'x', ''])}")

    while len(out) < N_REQUESTS:
        kinds[int(rng.integers(0, len(kinds)))]()
    return out


# ------------------------------------------------------------------------------------------------ the test
async def _send_all(url, requests, concurrency=16):
    sem = asyncio.Semaphore(concurrency)
    results = []

    async with aiohttp.ClientSession(url, timeout=aiohttp.ClientTimeout(total=60)) as s:
        async def one(req):
            kind, method, path, headers, body = req
            async with sem:
                async with s.request(method, path, data=body, headers=headers) as r:
                    await r.read()
                    results.append((kind, r.status))

        await asyncio.gather(*(one(r) for r in requests))
    return results


def _infer_b(url, start, n):
    req = urllib.request.Request(url + "/v2/models/b/infer", data=_j(sample_body(start, n)), method="POST")
    with urllib.request.urlopen(req, timeout=30) as r:
        return r.status, json.loads(r.read())["outputs"][0]["data"]


def test_thousands_of_malformed_requests_get_4xx_and_hurt_nobody(served):
    node, srv = served
    rng = np.random.default_rng(20261130)
    requests = malformed_requests(rng)
    assert len(requests) >= 2000
    starts = [(int(s), int(n)) for s, n in zip(rng.integers(0, B["library_items"] - MAX_ITEMS, 8),
                                               rng.integers(1, MAX_ITEMS + 1, 8))]
    reference = {sn: _infer_b(srv.url, *sn)[1] for sn in starts}
    before_a = node.stats()["a"]

    stop, b_results = threading.Event(), []

    def other_tenant():  # valid queries to tenant b for the whole fuzz run
        i = 0
        while not stop.is_set():
            sn = starts[i % len(starts)]
            try:
                status, scores = _infer_b(srv.url, *sn)
                b_results.append((status, scores == reference[sn]))
            except Exception as exc:  # noqa: BLE001 - recorded and asserted on below
                b_results.append((repr(exc), False))
            i += 1

    th = threading.Thread(target=other_tenant, daemon=True)
    th.start()
    try:
        results = asyncio.run(_send_all(srv.url, requests))
    finally:
        stop.set()
        th.join(60)

    statuses = Counter(code for _, code in results)
    bad = Counter((kind, code) for kind, code in results if not 400 <= code < 500)
    assert len(results) == len(requests)
    assert not bad, f"non-4xx answers to malformed requests: {dict(bad)}; all statuses: {dict(statuses)}"
    assert len(b_results) >= 5 and all(s == 200 and same for s, same in b_results), b_results[:5]

    with urllib.request.urlopen(srv.url + "/v2/health/ready", timeout=10) as r:  # the server is alive
        assert r.status == 200
    after_a = node.stats()["a"]
    # nothing malformed reached tenant a's workers, and its cores and LLC ways are as they were
    assert (after_a.completed_queries, after_a.failed_queries, after_a.rejected_queries) == (
        before_a.completed_queries, before_a.failed_queries, before_a.rejected_queries)
    assert after_a.cores == before_a.cores and after_a.llc_ways_requested == before_a.llc_ways_requested
    assert after_a.worker_pids == before_a.worker_pids
    req = urllib.request.Request(srv.url + INFER, data=_j(valid_tensors(rng, 3)), method="POST")
    with urllib.request.urlopen(req, timeout=30) as r:  # and it still serves
        assert r.status == 200 and len(json.loads(r.read())["outputs"][0]["data"]) == 3
