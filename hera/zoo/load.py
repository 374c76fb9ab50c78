"""Load a built model with its embedding tables memory-mapped read-only (one copy for N processes).

fp32: the module is constructed with its ``EmbeddingBagCollection`` / ``EmbeddingCollection`` on the
``meta`` device (nothing allocated), then ``load_state_dict(assign=True)`` puts in (a) the small dense
state dict and (b) for every table a tensor over ``np.memmap(embeddings.f32, mode="r")``
(``PROT_READ``, ``MAP_SHARED``): lookups read the page cache directly, every worker of a model maps the
same pages, and a write would fault instead of silently copying.

int8 (``-q8``): ``torch.load(model.pt, mmap=True)`` maps the saved TorchRec quantized module; the FBGEMM
table-batched weight buffers (``weights_host``) and the ``embedding_bags.*.weight`` views are storages
of that file, mapped ``MAP_PRIVATE``: pages are shared through the page cache as long as nobody writes
them (inference never does). No per-process copy of any table is made in either case.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np

from hera.zoo.layout import built_spec, model_dir, read_built_metadata  # noqa: F401  (part of this API)
from hera.zoo.spec import ModelSpec


def load_model(model_id: str, scale: str, quantized: bool = False, root: str | Path | None = None):
    """The built model in eval mode, tables memory-mapped read-only; :class:`NotBuiltError` if not built.

    ``root`` is the directory holding ``<model_id>[-q8]/`` (default ``models/build/<scale>``).
    """
    meta = read_built_metadata(model_id, scale, quantized, root)
    d = model_dir(model_id, scale, quantized, root)
    model = _load_q8(d) if quantized else _load_fp32(d, meta)
    model.requires_grad_(False)
    return model.eval()


def _load_fp32(d: Path, meta: dict[str, Any]):
    import torch

    from hera.zoo.models import build_module

    spec = ModelSpec.from_dict(meta["spec"])
    model = build_module(spec, emb_device="meta")
    state = torch.load(d / "dense.pt", mmap=True, weights_only=True)
    mm = np.memmap(d / "embeddings.f32", dtype=np.uint8, mode="r")
    prefix = {t.name: ("ebc.embedding_bags." if t.pooled else "ec.embeddings.") for t in spec.tables}
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
        for t in meta["tables"]:
            off, rows, dim = t["offset_bytes"], t["rows"], t["dim"]
            arr = mm[off:off + rows * dim * 4].view(np.float32).reshape(rows, dim)
            state[prefix[t["name"]] + t["name"] + ".weight"] = torch.from_numpy(arr)
    model.load_state_dict(state, strict=True, assign=True)
    for name, tensor in [*model.named_parameters(), *model.named_buffers()]:
        if tensor.is_meta:  # pragma: no cover - a module added a tensor the state dict does not cover
            raise RuntimeError(f"tensor {name} of {meta['model_id']} was not loaded")
    return model


def _load_q8(d: Path):
    import torch

    import hera.zoo.models  # noqa: F401  (classes referenced by the pickled module)

    return torch.load(d / "model.pt", mmap=True, weights_only=False)


def prefault(model) -> int:
    """Touch one byte per 4 KiB page of every tensor of ``model`` (tables included); return bytes covered.

    Maps every page of the memory-mapped tables into this process once (as a worker's warm-up would),
    so latency measurements see steady-state lookups, not first-touch page faults.
    """
    import torch

    seen: set[int] = set()
    total = 0
    tensors = [*model.parameters(), *model.buffers()]
    for mod in model.modules():  # FBGEMM keeps its weight buffer as a plain attribute
        host = getattr(mod, "weights_host", None)
        if isinstance(host, torch.Tensor):
            tensors.append(host)
    with torch.inference_mode():
        for t in tensors:
            storage = t.untyped_storage()
            key = storage.data_ptr()
            if key in seen or storage.nbytes() == 0:
                continue
            seen.add(key)
            total += touch_pages(torch.empty(0, dtype=torch.uint8).set_(storage).numpy())
    return total


PAGE_BYTES = 4096


def touch_pages(raw: np.ndarray) -> int:
    """Read one byte of every 4 KiB page of a flat uint8 array (a memory map: each page is mapped into this
    process now, not at its first use); return its bytes."""
    if raw.size:
        int(raw[::PAGE_BYTES].sum(dtype=np.uint64))
    return int(raw.size)


def table_files(model_id: str, scale: str, quantized: bool = False, root: str | Path | None = None) -> list[Path]:
    """The files a build's tables are memory-mapped from (``embeddings.f32``; ``model.pt`` for int8)."""
    d = model_dir(model_id, scale, quantized, root)
    return [d / ("model.pt" if quantized else "embeddings.f32")]


def evict_page_cache(paths: list[Path]) -> int:
    """Drop the clean, unmapped page-cache pages of ``paths`` (``posix_fadvise(DONTNEED)``); return the bytes
    advised. The next process to touch them reads them again and the kernel places them on *its* NUMA node
    (first touch), so a worker pinned on the plan's socket that prefaults them makes them NUMA-local. Pages
    some process still maps stay where they are."""
    import os

    total = 0
    for path in paths:
        try:
            fd = os.open(path, os.O_RDONLY)
        except OSError:
            continue
        try:
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
            total += os.fstat(fd).st_size
        finally:
            os.close(fd)
    return total


def numa_pages(pid: int, path: str | Path) -> dict[int, int]:
    """Resident pages of ``path``'s mappings in process ``pid`` per NUMA node (``/proc/pid/numa_maps``)."""
    target = str(Path(path).resolve())
    out: dict[int, int] = {}
    with open(f"/proc/{pid}/numa_maps") as f:
        for line in f:
            if f"file={target}" not in line:
                continue
            for item in line.split():
                if item[:1] == "N" and "=" in item and item[1:item.index("=")].isdigit():
                    node, pages = item[1:].split("=")
                    out[int(node)] = out.get(int(node), 0) + int(pages)
    return out


def mapped_file_memory(pid: int, path: str | Path) -> dict[str, int]:
    """Resident and proportional (Pss) bytes of ``path``'s mappings in process ``pid`` (``/proc/pid/smaps``).

    Pss divides each shared page by the number of processes mapping it, so the Pss of one table file
    summed over N workers stays ~ the file size when the pages are shared, and is N x when copied.
    """
    target = str(Path(path).resolve())
    rss = pss = 0
    current = False
    with open(f"/proc/{pid}/smaps") as f:
        for line in f:
            first = line.split(maxsplit=1)[0]
            if "-" in first and not first.endswith(":"):
                parts = line.split(maxsplit=5)
                current = len(parts) == 6 and parts[5].strip() == target
            elif current and first == "Rss:":
                rss += int(line.split()[1]) * 1024
            elif current and first == "Pss:":
                pss += int(line.split()[1]) * 1024
    return {"rss_bytes": rss, "pss_bytes": pss}
