"""N worker processes share ONE copy of a model's tables (fp32 and int8), measured with Pss.

Two ``spawn`` processes load the same built DLRM-RMC1 (8 tables x 65536 rows x 32 fp32 = 64 MiB), touch
every page of every table (:func:`hera.zoo.load.prefault`, i.e. every row) and run a forward pass; the parent
reads ``/proc/<pid>/smaps``: each process has the whole file resident (Rss) but its proportional share
(Pss) is half, so the two together account for one copy. A per-process copy would give 2x.
"""

from __future__ import annotations

import multiprocessing
import os

import pytest

pytestmark = pytest.mark.slow  # worker processes mapping built models

ROWS = 65536  # 8 x 65536 x 32 x 4 bytes = 64 MiB of fp32 tables


def _worker(root: str, conn, go) -> None:
    import numpy as np
    import torch

    from hera.zoo.inputs import make_inputs, random_inputs
    from hera.zoo.load import built_spec, load_model, prefault

    torch.set_num_threads(1)
    touched = {}
    models = []
    for quantized in (False, True):
        model = load_model("dlrm_rmc1", "ci", quantized, root=root)
        spec = built_spec("dlrm_rmc1", "ci", quantized, root)
        touched[quantized] = prefault(model)
        with torch.inference_mode():
            model(*make_inputs(spec, *random_inputs(spec, 8, np.random.default_rng(0))))
        models.append(model)  # keep the mappings alive until the parent has measured
    conn.send((os.getpid(), touched))
    go.wait(120)


@pytest.mark.skipif(not os.path.exists("/proc/self/smaps"), reason="needs Linux /proc/<pid>/smaps")
def test_two_processes_share_one_copy_of_the_tables(tmp_path):
    from hera.zoo.build import build_model_files
    from hera.zoo.load import mapped_file_memory

    fp32 = build_model_files("dlrm_rmc1", "ci", seed=0, out_root=tmp_path, overrides={"rows": ROWS}).parent
    q8 = build_model_files("dlrm_rmc1", "ci", quantized=True, seed=0, out_root=tmp_path,
                           overrides={"rows": ROWS}).parent
    table_bytes = 8 * ROWS * 32 * 4
    q8_bytes = 8 * ROWS * 48  # int8 rows + fp16 scale/bias, padded to 16 bytes by FBGEMM
    assert table_bytes >= 64 * 2**20

    ctx = multiprocessing.get_context("spawn")
    go = ctx.Event()
    pipes, procs = [], []
    try:
        for _ in range(2):
            parent, child = ctx.Pipe()
            p = ctx.Process(target=_worker, args=(str(tmp_path), child, go), daemon=True)
            p.start()
            pipes.append(parent)
            procs.append(p)
        reports = []
        for parent in pipes:
            assert parent.poll(180), "worker did not report"
            reports.append(parent.recv())
        stats = {
            name: [mapped_file_memory(pid, path) for pid, _ in reports]
            for name, path in (("fp32", fp32 / "embeddings.f32"), ("q8", q8 / "model.pt"))
        }
    finally:
        go.set()
        for p in procs:
            p.join(30)
            if p.is_alive():
                p.terminate()
    for _, touched in reports:
        assert touched[False] >= table_bytes and touched[True] >= q8_bytes
    for name, size in (("fp32", table_bytes), ("q8", q8_bytes)):
        rss = [s["rss_bytes"] for s in stats[name]]
        pss = [s["pss_bytes"] for s in stats[name]]
        print(f"{name}: table bytes {size}, rss per process {rss}, pss per process {pss}")
        assert all(r >= 0.95 * size for r in rss), (name, rss)      # each process sees every page
        assert sum(pss) <= 1.3 * size, (name, pss)                    # ... but together they hold one copy
        assert all(p <= 0.65 * size for p in pss), (name, pss)
