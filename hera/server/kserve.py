"""KServe v2 / Open Inference Protocol: model descriptions, infer-request decoding and response encoding.

Pure functions and dataclasses (no aiohttp, no Node), so that the HTTP front end (:mod:`hera.server.http`)
and its tests share one definition of the wire format.

Wire format (https://kserve.github.io/website/latest/modelserving/data_plane/v2_protocol/):

- request ``{"id"?, "parameters"?, "inputs": [{"name", "shape", "datatype", "data" | "parameters":
  {"binary_data_size": k}}], "outputs"?: [{"name", "parameters"?: {"binary_data": bool}}]}``;
- response ``{"model_name", "model_version", "id"?, "outputs": [{"name", "shape", "datatype", "data" |
  "parameters": {"binary_data_size": k}}], "parameters"?}``.

Binary tensor extension (Triton's ``binary_tensor_data``, used by ``tritonclient`` with ``binary_data=True``):
the body is the JSON header followed by the raw little-endian bytes of every input that declares
``binary_data_size``, in input order; the HTTP header ``Inference-Header-Content-Length`` gives the length
of the JSON part. Responses use the same layout when an output asks for ``binary_data`` (or the request sets
``parameters.binary_data_output``).

Model inputs follow docs/DESIGN.md "Model inputs": ``dense`` FP32 ``[n, dense_in]`` and ``sparse_ids`` INT64
``[n, L]`` (``L = sum(t.lookups)``, columns grouped by table in spec order); or the sample-library fast path
``sample_start`` and ``n_items`` (INT64, one element each). The only output is ``scores`` FP32 ``[n, T]``.
"""

from __future__ import annotations

import functools
import json
import math
from dataclasses import dataclass, field
from typing import Any, Mapping

import numpy as np

from hera.errors import HeraError

#: KServe v2 datatype → little-endian numpy dtype (all tensor types of the protocol except BYTES).
DATATYPES: dict[str, np.dtype] = {
    "BOOL": np.dtype("?"),
    "UINT8": np.dtype("<u1"),
    "UINT16": np.dtype("<u2"),
    "UINT32": np.dtype("<u4"),
    "UINT64": np.dtype("<u8"),
    "INT8": np.dtype("<i1"),
    "INT16": np.dtype("<i2"),
    "INT32": np.dtype("<i4"),
    "INT64": np.dtype("<i8"),
    "FP16": np.dtype("<f2"),
    "FP32": np.dtype("<f4"),
    "FP64": np.dtype("<f8"),
}

DENSE = "dense"
SPARSE_IDS = "sparse_ids"
SAMPLE_START = "sample_start"
N_ITEMS = "n_items"
SCORES = "scores"
PLATFORM = "torchrec"
MODEL_VERSION = "1"


class ProtocolError(HeraError):
    """A request that breaks the protocol or the model's input contract; ``status`` is its HTTP code."""

    status = 400

    def __init__(self, message: str, status: int | None = None):
        super().__init__(message)
        if status is not None:
            self.status = status


class ModelNotFoundError(ProtocolError):
    """A model (tenant) name that the node does not serve (HTTP 404)."""

    status = 404


# ----------------------------------------------------------------------------------------------------------
# Model descriptions
# ----------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TableInfo:
    """One embedding table as the front end sees it: ids of this table must lie in ``[0, rows)``."""

    name: str
    rows: int
    lookups: int


@dataclass(frozen=True)
class ModelInfo:
    """What the front end needs to know about one tenant to describe it and validate requests.

    ``id_limits``: for each of the ``L`` columns of ``sparse_ids``, the row count of the table it indexes.
    ``tables``: the tables in spec order when known (names in metadata and error messages), else empty.
    """

    name: str  # the tenant name: the KServe model name in URLs
    model_id: str
    scale: str
    dense_in: int
    id_limits: tuple[int, ...]
    n_outputs: int
    max_items: int
    library_items: int | None = None  # size of the tenant's sample library, when known
    tables: tuple[TableInfo, ...] = ()

    @property
    def lookups_per_item(self) -> int:
        """``L``: sparse ids per item (all tables, grouped by table in spec order)."""
        return len(self.id_limits)

    @functools.cached_property
    def column_rows(self) -> np.ndarray:
        """``int64[L]``: the row count of the table that owns each column of ``sparse_ids``."""
        out = np.asarray(self.id_limits, dtype=np.int64).reshape(-1)
        out.setflags(write=False)
        return out

    def column_table(self, col: int) -> str | None:
        """Name of the table that owns column ``col`` of ``sparse_ids`` (None when tables are unknown)."""
        start = 0
        for t in self.tables:
            if col < start + t.lookups:
                return t.name
            start += t.lookups
        return None

    def metadata(self) -> dict[str, Any]:
        """The KServe v2 model-metadata response (``GET /v2/models/{name}``)."""
        inputs = []
        if self.dense_in > 0:
            inputs.append({"name": DENSE, "datatype": "FP32", "shape": [-1, self.dense_in]})
        inputs.append({"name": SPARSE_IDS, "datatype": "INT64", "shape": [-1, self.lookups_per_item]})
        params: dict[str, Any] = {
            "model_id": self.model_id,
            "scale": self.scale,
            "max_items": self.max_items,
            "dense_in": self.dense_in,
            "lookups_per_item": self.lookups_per_item,
            "library_items": self.library_items,
            "sample_library_inputs": [
                {"name": SAMPLE_START, "datatype": "INT64", "shape": [1]},
                {"name": N_ITEMS, "datatype": "INT64", "shape": [1]},
            ],
        }
        if self.tables:
            params["tables"] = [{"name": t.name, "rows": t.rows, "lookups": t.lookups} for t in self.tables]
        else:
            params["id_limits"] = list(self.id_limits)
        return {
            "name": self.name,
            "versions": [MODEL_VERSION],
            "platform": PLATFORM,
            "inputs": inputs,
            "outputs": [{"name": SCORES, "datatype": "FP32", "shape": [-1, self.n_outputs]}],
            "parameters": params,
        }


@functools.lru_cache(maxsize=64)
def _zoo_tables(model_id: str, scale: str) -> tuple[TableInfo, ...]:
    """Tables of a zoo model in spec order (empty when the zoo does not know the model)."""
    try:
        from hera.zoo.spec import load_spec

        spec = load_spec(model_id, scale)
        return tuple(TableInfo(str(t.name), int(t.rows), int(t.lookups)) for t in spec.tables)
    except Exception:  # noqa: BLE001 - names are a nicety; a synthetic tenant has no zoo spec
        return ()


def _tables_match(tables: tuple[TableInfo, ...], id_limits: tuple[int, ...]) -> bool:
    cols = tuple(t.rows for t in tables for _ in range(t.lookups))
    return bool(tables) and cols == id_limits


def model_info(name: str, info: Mapping[str, Any]) -> ModelInfo:
    """Build a :class:`ModelInfo` from ``node.tenant_info(name)``.

    Reads ``model``, ``scale``, ``max_items``, ``library_items`` and the runner's input description
    ``dense_in``, ``n_ids``, ``n_outputs``, ``id_limits`` (present once a worker is ready: otherwise
    :class:`ProtocolError` 503). Table names come from ``info["tables"]`` (``name, rows, lookups``) or the zoo
    spec of the model, when their columns agree with ``id_limits``.
    """
    if info.get("dense_in") is None or info.get("id_limits") is None and info.get("n_ids") is None:
        raise ProtocolError(f"model {name!r} has no ready worker yet", status=503)
    dense_in = int(info["dense_in"])
    limits = info.get("id_limits")
    if limits is None:  # no per-column limits: accept any non-negative id (the node checks again)
        limits = [np.iinfo(np.int64).max] * int(info["n_ids"])
    id_limits = tuple(int(v) for v in limits)
    model_id, scale = str(info.get("model", name)), str(info.get("scale", ""))
    tables: tuple[TableInfo, ...] = ()
    if info.get("tables"):
        tables = tuple(TableInfo(str(t["name"]), int(t["rows"]), int(t["lookups"])) for t in info["tables"])
    elif scale:
        tables = _zoo_tables(model_id, scale)
    library = info.get("library_items")
    return ModelInfo(
        name=name,
        model_id=model_id,
        scale=scale,
        dense_in=dense_in,
        id_limits=id_limits,
        n_outputs=int(info.get("n_outputs", 1)),
        max_items=int(info.get("max_items", 1024)),
        library_items=None if library is None else int(library),
        tables=tables if _tables_match(tables, id_limits) else (),
    )


def server_metadata(version: str) -> dict[str, Any]:
    """The KServe v2 server-metadata response (``GET /v2``)."""
    return {"name": "hera", "version": version, "extensions": ["binary_tensor_data", "hera_control"]}


# ----------------------------------------------------------------------------------------------------------
# Requests
# ----------------------------------------------------------------------------------------------------------


@dataclass
class InferRequest:
    """A decoded infer request: tensors by input name, and what the client wants back."""

    id: str | None
    inputs: dict[str, np.ndarray]
    datatypes: dict[str, str]
    binary_output: bool = False  # return ``scores`` with the binary tensor extension
    parameters: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class TensorQuery:
    """A validated query carrying real tensors: ``dense`` float32[n, dense_in], ``ids`` int64[n, L]."""

    dense: np.ndarray
    ids: np.ndarray

    @property
    def n_items(self) -> int:
        return int(self.ids.shape[0])


@dataclass(frozen=True)
class SampleQuery:
    """A validated sample-library query: items ``[sample_start, sample_start + n_items)`` of the library."""

    sample_start: int
    n_items: int


def _parse_json(raw: bytes | str, what: str) -> Any:
    try:
        return json.loads(raw)
    except (UnicodeDecodeError, ValueError) as exc:  # JSONDecodeError is a ValueError
        raise ProtocolError(f"malformed JSON in {what}: {exc}") from None
    except RecursionError:  # found by the fuzz test: [[[[...]]]] 1,000 deep was a 500
        raise ProtocolError(f"JSON in {what} is nested too deeply") from None


def _shape(value: Any, where: str) -> tuple[int, ...]:
    if not isinstance(value, list) or not all(isinstance(d, int) and not isinstance(d, bool) for d in value):
        raise ProtocolError(f"{where}: 'shape' must be a list of integers, got {value!r}")
    if any(d < 0 for d in value):
        raise ProtocolError(f"{where}: 'shape' must not have negative dimensions, got {value}")
    return tuple(value)


def _from_json_data(data: Any, dtype: np.dtype, datatype: str, shape: tuple[int, ...],
                    where: str) -> np.ndarray:
    if not isinstance(data, list):
        raise ProtocolError(f"{where}: 'data' must be a JSON array")
    try:
        arr = np.asarray(data)
    except (ValueError, TypeError):
        raise ProtocolError(f"{where}: 'data' is a ragged or mixed array") from None
    if arr.size != math.prod(shape):
        raise ProtocolError(f"{where}: 'data' has {arr.size} elements but shape {list(shape)} "
                            f"needs {math.prod(shape)}")
    kind = arr.dtype.kind
    if arr.size == 0:
        pass
    elif dtype.kind in "iu":
        if kind not in "iu":
            raise ProtocolError(f"{where}: {datatype} data must be integers, got {_kind_name(kind)}")
        info = np.iinfo(dtype)
        if arr.min() < info.min or arr.max() > info.max:
            raise ProtocolError(f"{where}: data out of range for {datatype}")
    elif dtype.kind == "f":
        if kind not in "iuf":
            raise ProtocolError(f"{where}: {datatype} data must be numbers, got {_kind_name(kind)}")
    elif dtype.kind == "b" and kind != "b":
        raise ProtocolError(f"{where}: BOOL data must be true/false, got {_kind_name(kind)}")
    return arr.astype(dtype.newbyteorder("="), copy=False).reshape(shape)


def _kind_name(kind: str) -> str:
    names = {"b": "booleans", "i": "integers", "u": "integers", "f": "floats", "U": "strings", "O": "objects"}
    return names.get(kind, f"numpy kind {kind!r}")


def decode_infer_request(body: bytes, header_length: int | None = None) -> InferRequest:
    """Decode a v2 infer request body (JSON, or JSON + binary tensors when ``header_length`` is given).

    Raises :class:`ProtocolError` (HTTP 400) for malformed JSON, unknown datatypes, shapes that do not match
    the data, a binary part that does not add up, or requested outputs other than ``scores``.
    """
    if header_length is None:
        header_raw, binary = body, b""
    else:
        if header_length <= 0 or header_length > len(body):
            raise ProtocolError(
                f"Inference-Header-Content-Length {header_length} is outside the body's {len(body)} bytes"
            )
        header_raw, binary = body[:header_length], memoryview(body)[header_length:]
    if not header_raw:
        raise ProtocolError("empty request body: expected a JSON object with 'inputs'")
    req = _parse_json(header_raw, "request body")
    if not isinstance(req, dict):
        raise ProtocolError("request body must be a JSON object with 'inputs'")
    inputs = req.get("inputs")
    if not isinstance(inputs, list) or not inputs:
        raise ProtocolError("request needs a non-empty 'inputs' list")
    req_id = req.get("id")
    if req_id is not None and not isinstance(req_id, str):
        raise ProtocolError("request 'id' must be a string")
    params = req.get("parameters") or {}
    if not isinstance(params, dict):
        raise ProtocolError("request 'parameters' must be a JSON object")

    tensors: dict[str, np.ndarray] = {}
    datatypes: dict[str, str] = {}
    offset = 0
    for i, item in enumerate(inputs):
        if not isinstance(item, dict):
            raise ProtocolError(f"inputs[{i}] must be a JSON object")
        name = item.get("name")
        if not isinstance(name, str) or not name:
            raise ProtocolError(f"inputs[{i}] needs a string 'name'")
        where = f"input {name!r}"
        if name in tensors:
            raise ProtocolError(f"{where} is given twice")
        datatype = item.get("datatype")
        if datatype not in DATATYPES:
            raise ProtocolError(f"{where}: unsupported datatype {datatype!r}; "
                                f"expected one of {', '.join(DATATYPES)}")
        dtype = DATATYPES[datatype]
        shape = _shape(item.get("shape"), where)
        in_params = item.get("parameters") or {}
        if not isinstance(in_params, dict):
            raise ProtocolError(f"{where}: 'parameters' must be a JSON object")
        size = in_params.get("binary_data_size")
        if size is not None:
            if header_length is None:
                raise ProtocolError(f"{where} declares binary_data_size but the request has no "
                                    "Inference-Header-Content-Length header")
            if not isinstance(size, int) or isinstance(size, bool) or size < 0:
                raise ProtocolError(f"{where}: binary_data_size must be a non-negative integer")
            need = math.prod(shape) * dtype.itemsize
            if size != need:
                raise ProtocolError(f"{where}: binary_data_size {size} != {need} bytes for "
                                    f"{datatype} {list(shape)}")
            if offset + size > len(binary):
                raise ProtocolError(f"{where}: binary data is truncated "
                                    f"({len(binary) - offset} of {size} bytes left)")
            arr = np.frombuffer(binary[offset:offset + size], dtype=dtype).reshape(shape)
            offset += size
            tensors[name] = arr.astype(dtype.newbyteorder("="), copy=False)
        elif "data" in item:
            tensors[name] = _from_json_data(item["data"], dtype, datatype, shape, where)
        else:
            raise ProtocolError(f"{where} has neither 'data' nor parameters.binary_data_size")
        datatypes[name] = datatype
    if offset != len(binary):
        raise ProtocolError(f"{len(binary) - offset} bytes of binary data follow the last binary input")

    binary_output = bool(params.get("binary_data_output", False))
    outputs = req.get("outputs")
    if outputs is not None:
        if not isinstance(outputs, list):
            raise ProtocolError("request 'outputs' must be a list")
        for i, out in enumerate(outputs):
            if not isinstance(out, dict) or not isinstance(out.get("name"), str):
                raise ProtocolError(f"outputs[{i}] must be a JSON object with a string 'name'")
            if out["name"] != SCORES:
                raise ProtocolError(f"unknown output {out['name']!r}; this model has output '{SCORES}'")
            out_params = out.get("parameters") or {}
            if not isinstance(out_params, dict):
                raise ProtocolError(f"outputs[{i}]: 'parameters' must be a JSON object")
            if "binary_data" in out_params:
                binary_output = bool(out_params["binary_data"])
    return InferRequest(id=req_id, inputs=tensors, datatypes=datatypes, binary_output=binary_output,
                        parameters=params)


def _expect(req: InferRequest, name: str, datatype: str) -> np.ndarray:
    if req.datatypes[name] != datatype:
        raise ProtocolError(f"input {name!r} must be {datatype}, got {req.datatypes[name]}")
    return req.inputs[name]


def _scalar(req: InferRequest, name: str) -> int:
    arr = _expect(req, name, "INT64")
    if arr.size != 1:
        raise ProtocolError(f"input {name!r} must hold exactly one value (shape [1]), "
                            f"got shape {list(arr.shape)}")
    return int(arr.reshape(-1)[0])


def validate_request(info: ModelInfo, req: InferRequest) -> TensorQuery | SampleQuery:
    """Check a decoded request against one model's input contract; return the query to submit.

    Everything a worker could trip over is caught here (HTTP 400): unknown or missing inputs, wrong datatypes
    or shapes, ``n`` outside ``1..max_items``, non-finite dense values, and ids outside their table's rows.
    """
    names = set(req.inputs)
    tensor_names = {DENSE, SPARSE_IDS}
    sample_names = {SAMPLE_START, N_ITEMS}
    unknown = names - tensor_names - sample_names
    if unknown:
        expected = f"'{DENSE}' and '{SPARSE_IDS}'" if info.dense_in else f"'{SPARSE_IDS}'"
        raise ProtocolError(
            f"unknown input {sorted(unknown)[0]!r} for model {info.name!r}; expected {expected} "
            f"(or '{SAMPLE_START}' and '{N_ITEMS}')"
        )
    if names & sample_names:
        if names & tensor_names:
            raise ProtocolError(f"give either tensors ('{DENSE}', '{SPARSE_IDS}') or a sample range "
                                f"('{SAMPLE_START}', '{N_ITEMS}'), not both")
        missing = sample_names - names
        if missing:
            raise ProtocolError(f"missing input {sorted(missing)[0]!r} (the sample-library form needs "
                                f"'{SAMPLE_START}' and '{N_ITEMS}')")
        start, n = _scalar(req, SAMPLE_START), _scalar(req, N_ITEMS)
        _check_n(info, n)
        if start < 0:
            raise ProtocolError(f"sample_start must be >= 0, got {start}")
        if info.library_items is not None and start >= info.library_items:
            raise ProtocolError(f"sample_start {start} is outside the sample library of model {info.name!r} "
                                f"(0..{info.library_items - 1}; ranges wrap at its end)")
        return SampleQuery(start, n)

    if SPARSE_IDS not in names:
        raise ProtocolError(f"missing input '{SPARSE_IDS}' (INT64 [n, {info.lookups_per_item}]) "
                            f"for model {info.name!r}")
    ids = _expect(req, SPARSE_IDS, "INT64")
    L = info.lookups_per_item
    if ids.ndim != 2 or ids.shape[1] != L:
        raise ProtocolError(f"input '{SPARSE_IDS}' must have shape [n, {L}], got {list(ids.shape)}")
    n = ids.shape[0]
    if DENSE in names:
        dense = _expect(req, DENSE, "FP32")
        if dense.ndim != 2 or dense.shape[1] != info.dense_in:
            raise ProtocolError(f"input '{DENSE}' must have shape [n, {info.dense_in}], "
                                f"got {list(dense.shape)}")
        if dense.shape[0] != n:
            raise ProtocolError(f"inputs disagree on n: '{DENSE}' has {dense.shape[0]} rows, "
                                f"'{SPARSE_IDS}' has {n}")
    elif info.dense_in > 0:
        raise ProtocolError(f"missing input '{DENSE}' (FP32 [n, {info.dense_in}]) for model {info.name!r}")
    else:
        dense = np.zeros((n, 0), dtype=np.float32)
    _check_n(info, n)
    if dense.size and not np.isfinite(dense).all():
        raise ProtocolError(f"input '{DENSE}' contains NaN or infinity")
    _check_ids(info, ids)
    return TensorQuery(np.ascontiguousarray(dense, dtype=np.float32),
                       np.ascontiguousarray(ids, dtype=np.int64))


def _check_n(info: ModelInfo, n: int) -> None:
    if n < 1:
        raise ProtocolError(f"a query needs at least 1 item, got {n}")
    if n > info.max_items:
        raise ProtocolError(f"query of {n} items exceeds max_items={info.max_items} of model {info.name!r}")


def _check_ids(info: ModelInfo, ids: np.ndarray) -> None:
    bad = (ids < 0) | (ids >= info.column_rows)
    if not bad.any():
        return
    item, col = (int(v) for v in np.argwhere(bad)[0])
    table = info.column_table(col)
    owner = f"table {table!r}" if table else f"column {col}"
    raise ProtocolError(
        f"sparse_ids[{item}, {col}] = {int(ids[item, col])} is outside {owner} "
        f"rows [0, {int(info.column_rows[col])})"
    )


# ----------------------------------------------------------------------------------------------------------
# Responses
# ----------------------------------------------------------------------------------------------------------


def encode_infer_response(
    model_name: str,
    scores: np.ndarray,
    *,
    request_id: str | None = None,
    binary: bool = False,
    parameters: dict[str, Any] | None = None,
) -> tuple[bytes, int | None]:
    """Encode ``scores`` (float32[n, T]) as a v2 infer response.

    Returns ``(body, header_length)``: ``header_length`` is None for a pure JSON body, else the length of
    the JSON part (send it as ``Inference-Header-Content-Length``), which the raw little-endian float32
    bytes follow.
    """
    scores = np.ascontiguousarray(scores, dtype="<f4")
    out: dict[str, Any] = {"name": SCORES, "datatype": "FP32", "shape": list(scores.shape)}
    if binary:
        raw = scores.tobytes()
        out["parameters"] = {"binary_data_size": len(raw)}
    else:
        out["data"] = scores.reshape(-1).tolist()
    resp: dict[str, Any] = {"model_name": model_name, "model_version": MODEL_VERSION}
    if request_id is not None:
        resp["id"] = request_id
    resp["outputs"] = [out]
    if parameters:
        resp["parameters"] = parameters
    header = json.dumps(resp, separators=(",", ":")).encode()
    if not binary:
        return header, None
    return header + raw, len(header)


def decode_infer_response(body: bytes, header_length: int | None = None) -> dict[str, np.ndarray]:
    """Decode a v2 infer response into ``{output name: array}`` (JSON or binary outputs; clients, tests)."""
    header_raw = body if header_length is None else body[:header_length]
    resp = _parse_json(header_raw, "response body")
    offset = header_length or 0
    result = {}
    for out in resp.get("outputs", []):
        dtype = DATATYPES[out["datatype"]]
        size = (out.get("parameters") or {}).get("binary_data_size")
        if size is not None:
            result[out["name"]] = np.frombuffer(body[offset:offset + size], dtype=dtype).reshape(out["shape"])
            offset += size
        else:
            result[out["name"]] = np.asarray(out["data"], dtype=dtype).reshape(out["shape"])
    return result
