"""Build a model's files: deterministic weights + metadata, ready to be memory-mapped by N workers.

Layout of ``<out_root>/<model_id>/`` (``out_root`` defaults to ``models/build/<scale>``):

- ``embeddings.f32``: every table's fp32 rows, raw little-endian, one table after the other, each
  starting at a 4096-byte-aligned offset (``meta.json`` lists name, rows, dim, offset of each);
- ``dense.pt``: ``torch.save`` of the non-embedding state dict (MLPs, attention, GRUs);
- ``meta.json``: docs/DESIGN.md metadata (``model_id, scale, quantized, params, embedding_bytes,
  mlp_flops_per_item, emb_bytes_gathered_per_item, dense_in, lookups_per_item, n_outputs,
  build_seconds, seed, files``) plus the full spec, the table layout and the versions used.

The quantized variant ``<out_root>/<model_id>-q8/`` holds ``model.pt``: the module after TorchRec's
``quantize_inference_model`` (int8 rows with fp16 scale/bias through FBGEMM's table-batched CPU
kernels, for pooled *and* sequence tables), saved whole with ``torch.save``. It is quantized from the
fp32 build of the same seed (built first when missing) and loaded with ``torch.load(mmap=True)``, so
the FBGEMM weight buffers are pages of that file shared by every process (see :mod:`hera.zoo.load`).

Initialisation follows DeepRecSys: tables ``U(-sqrt(1/rows), sqrt(1/rows))``, weight matrices
``N(0, sqrt(2/(fan_in+fan_out)))``, biases ``N(0, sqrt(1/fan_out))``; every table and every dense tensor
draws from its own numpy stream seeded by ``(seed, crc32(name))``. Tables are filled in chunks
straight into the memory-mapped output file (no full copy in memory).
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import shutil
import time
import warnings
import zlib
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from hera.machine import check_fits
from hera.zoo.layout import FORMAT_VERSION, is_built, model_dir
from hera.zoo.spec import ModelSpec, load_spec

ALIGN_BYTES = 4096
CHUNK_ROWS = 1 << 18
#: int8 rows as FBGEMM stores them: dim bytes + fp16 scale + fp16 bias (4 bytes), padded to 16 bytes.
Q8_SCALE_BIAS_BYTES = 4
Q8_ROW_ALIGNMENT = 16


def q8_row_bytes(dim: int, padded: bool = False) -> int:
    """Bytes of one int8 row (with scale/bias); ``padded`` adds FBGEMM's 16-byte row alignment."""
    raw = dim + Q8_SCALE_BIAS_BYTES
    return -(-raw // Q8_ROW_ALIGNMENT) * Q8_ROW_ALIGNMENT if padded else raw


def weights_bytes(spec: ModelSpec, quantized: bool = False) -> int:
    """Bytes the tables occupy once built (fp32 rows, or padded int8 rows)."""
    if quantized:
        return sum(t.rows * q8_row_bytes(t.dim, padded=True) for t in spec.tables)
    return spec.embedding_bytes()


def _stream(seed: int, name: str) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([seed, zlib.crc32(name.encode())]))


def _table_layout(spec: ModelSpec) -> tuple[list[dict[str, Any]], int]:
    layout, offset = [], 0
    for t in spec.tables:
        layout.append({"name": t.name, "rows": t.rows, "dim": t.dim, "lookups": t.lookups, "pooled": t.pooled,
                       "offset_bytes": offset})
        offset += -(-t.rows * t.dim * 4 // ALIGN_BYTES) * ALIGN_BYTES
    return layout, offset


def _fill_tables(path: Path, layout: list[dict[str, Any]], total_bytes: int, seed: int) -> None:
    """Write every table's U(-sqrt(1/rows), sqrt(1/rows)) rows straight into the memory-mapped file."""
    mm = np.memmap(path, dtype=np.uint8, mode="w+", shape=(max(total_bytes, 1),))
    try:
        for t in layout:
            rows, dim, off = t["rows"], t["dim"], t["offset_bytes"]
            table = mm[off:off + rows * dim * 4].view(np.float32).reshape(rows, dim)
            rng = _stream(seed, "table:" + t["name"])
            bound = np.float32(np.sqrt(1.0 / rows))
            for start in range(0, rows, CHUNK_ROWS):
                chunk = table[start:start + CHUNK_ROWS]
                rng.random(out=chunk, dtype=np.float32)
                chunk *= 2 * bound
                chunk -= bound
        mm.flush()
    finally:
        del mm


def _dense_state(model, seed: int, skip: set[str]) -> dict[str, Any]:
    """DeepRecSys-style random values for every non-embedding tensor of the state dict."""
    import torch

    out = {}
    for name, tensor in model.state_dict().items():
        if name in skip:
            continue
        rng = _stream(seed, "dense:" + name)
        shape = tuple(tensor.shape)
        if len(shape) == 2:
            std = np.sqrt(2.0 / (shape[0] + shape[1]))
        else:
            std = np.sqrt(1.0 / max(1, shape[0] if shape else 1))
        out[name] = torch.from_numpy(rng.normal(0.0, std, size=shape).astype(np.float32))
    return out


def _versions() -> dict[str, str]:
    from importlib import metadata

    out = {}
    for pkg in ("torch", "torchrec", "fbgemm-gpu-cpu", "numpy"):
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            out[pkg] = "absent"
    return out


def _finish(tmp: Path, final: Path) -> None:
    """Move a completed build into place (replacing an older one)."""
    old = None
    if final.exists():
        old = final.with_name(f".{final.name}.old-{os.getpid()}")
        final.rename(old)
    tmp.rename(final)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def _files(d: Path) -> dict[str, int]:
    return {p.name: p.stat().st_size for p in sorted(d.iterdir()) if p.is_file() and p.name != "meta.json"}


def build_model_files(model_id: str, scale: str, quantized: bool = False, seed: int = 0,
                      out_root: str | Path | None = None, *, overrides: Mapping[str, Any] | None = None,
                      specs_dir: str | Path | None = None, available_memory_bytes: int | None = None,
                      free_disk_bytes: int | None = None) -> Path:
    """Build ``model_id`` at ``scale`` under ``<out_root>/<model_id>[-q8]/``; return its ``meta.json``.

    ``overrides`` / ``specs_dir`` are passed to :func:`hera.zoo.spec.load_spec` (the resulting spec is
    stored in the metadata, so :func:`hera.zoo.load.load_model` rebuilds the same architecture).
    Raises :class:`ResourceError` when the weights would exceed 60% of available memory or free disk.
    """
    spec = load_spec(model_id, scale, overrides=overrides, specs_dir=specs_dir)
    final = model_dir(model_id, scale, quantized, out_root)
    what = f"model {model_id} at scale {scale}" + (" (int8)" if quantized else "")
    needed = weights_bytes(spec, quantized)
    if quantized and not is_built(model_id, scale, False, seed, out_root, spec):
        needed += weights_bytes(spec, False)
    check_fits(needed, what, final.parent, available_memory_bytes=available_memory_bytes,
               free_disk_bytes=free_disk_bytes)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.with_name(f".{final.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    _import_heavy(quantized)  # so that build_seconds measures the build, not torch's import
    t0 = time.perf_counter()
    try:
        if quantized:
            meta = _build_q8(spec, seed, tmp, out_root, overrides, specs_dir)
        else:
            meta = _build_fp32(spec, seed, tmp)
        meta["build_seconds"] = round(time.perf_counter() - t0, 4)
        meta["files"] = _files(tmp)
        (tmp / "meta.json").write_text(json.dumps(meta, indent=2) + "\n")
        _finish(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return final / "meta.json"


def _import_heavy(quantized: bool) -> None:
    import hera.zoo.models  # noqa: F401  (torch, torchrec)

    if quantized:
        import torchrec.inference.modules  # noqa: F401


def _common_meta(spec: ModelSpec, seed: int, quantized: bool, model) -> dict[str, Any]:
    from hera.zoo.models import embedding_weight_names

    emb = set(embedding_weight_names(model))
    dense_params = sum(int(v.numel()) for k, v in model.state_dict().items() if k not in emb)
    emb_params = sum(t.rows * t.dim for t in spec.tables)
    if quantized:
        row = {t.name: q8_row_bytes(t.dim) for t in spec.tables}
        gathered = spec.emb_bytes_gathered_per_item(row)
    else:
        gathered = spec.emb_bytes_gathered_per_item()
    return {
        "format_version": FORMAT_VERSION,
        "model_id": spec.model_id,
        "kind": spec.kind,
        "scale": spec.scale,
        "quantized": quantized,
        "weights_dtype": "int8-rowwise (fp16 scale+bias)" if quantized else "float32",
        "params": emb_params + dense_params,
        "embedding_params": emb_params,
        "dense_params": dense_params,
        "embedding_bytes": weights_bytes(spec, quantized),
        "mlp_flops_per_item": int(model.flops_per_item()),
        "emb_bytes_gathered_per_item": int(gathered),
        "dense_in": spec.dense_in,
        "lookups_per_item": spec.lookups_per_item,
        "n_outputs": spec.n_outputs,
        "interaction": spec.interaction,
        "seed": seed,
        "created_utc": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "versions": _versions(),
        "spec": spec.to_dict(),
    }


def _build_fp32(spec: ModelSpec, seed: int, out: Path) -> dict[str, Any]:
    import torch

    from hera.zoo.models import build_module, embedding_weight_names

    model = build_module(spec, emb_device="meta")
    layout, total = _table_layout(spec)
    _fill_tables(out / "embeddings.f32", layout, total, seed)
    dense = _dense_state(model, seed, set(embedding_weight_names(model)))
    torch.save(dense, out / "dense.pt")
    meta = _common_meta(spec, seed, False, model)
    meta["tables"] = layout
    meta["embedding_file_bytes"] = total
    return meta


def _build_q8(spec: ModelSpec, seed: int, out: Path, out_root, overrides, specs_dir) -> dict[str, Any]:
    import torch
    from torchrec.inference.modules import quantize_inference_model

    from hera.zoo.load import load_model

    fp32_root = out_root
    if not is_built(spec.model_id, spec.scale, False, seed, out_root, spec):
        fp32_root = out / "fp32"  # built privately when the shared fp32 build is missing or differs
        fp32_root.mkdir()
        build_model_files(spec.model_id, spec.scale, False, seed, fp32_root, overrides=overrides,
                          specs_dir=specs_dir, available_memory_bytes=1 << 62, free_disk_bytes=1 << 62)
    model = load_model(spec.model_id, spec.scale, False, root=fp32_root)
    with warnings.catch_warnings():  # torch.ao.quantization's deprecation notice, used inside TorchRec
        warnings.filterwarnings("ignore", category=DeprecationWarning)
        quantize_inference_model(model, quantization_dtype=torch.int8, output_dtype=torch.float)
    model.eval()
    for mod in model.modules():
        # TorchRec keeps the from_float() int8 copies beside the FBGEMM buffer that holds the same rows;
        # forward never reads them, so drop them instead of saving every table twice.
        if getattr(mod, "_table_name_to_quantized_weights", None) is not None:
            mod._table_name_to_quantized_weights = None
    torch.save(model, out / "model.pt")
    meta = _common_meta(spec, seed, True, model)
    meta["embedding_bytes"] = sum(int(tbe.weights_host.numel()) for tbe in _tbes(model))
    meta["quantization"] = ("torchrec.inference.modules.quantize_inference_model(quantization_dtype=int8): "
                            "EmbeddingBagCollection -> QuantEmbeddingBagCollection, EmbeddingCollection -> "
                            "QuantEmbeddingCollection (FBGEMM IntNBitTableBatchedEmbeddingBagsCodegen, CPU)")
    if fp32_root is not out_root:
        shutil.rmtree(out / "fp32", ignore_errors=True)
    return meta


def _tbes(model) -> list:
    """FBGEMM table-batched embedding modules inside a quantized model."""
    out = []
    for name in ("ebc", "ec"):
        mod = getattr(model, name, None)
        out += list(getattr(mod, "_emb_modules", []) or [])
    return out
