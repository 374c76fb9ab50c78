"""T1: the model zoo table — sizes, analytical class, single-worker latency and the SLA of each model.

Method (one process, no server):

- the built fp32 model (``models/build/<scale>``) is loaded memory-mapped and its table pages are
  pre-faulted once (steady state of a serving worker);
- the process is pinned to one core (``os.sched_setaffinity``) with ``torch.set_num_threads(1)``;
- for each sub-batch size ``b`` in 1, 64, 256 (and the SLA size below): ``warmup`` runs, then the median
  of ``repeats`` timed runs of ``make_inputs`` + ``forward`` on uniform random inputs in the
  sample-library layout (``dense`` U[0, 1), ids uniform over each table's rows), cycling through a few
  distinct batches so repeated runs do not reuse the same rows;
- **SLA** (docs/DESIGN.md "SLA rule", :mod:`hera.profile.sla`): from each model's service profile, measured
  through the serving path on the whole query-size mix (not from these in-process timings): the SLA, its
  rule, the unloaded one-worker p50/p95/p99 of the mix and the headroom ``sla_ms / p95`` (at least 2) are
  columns of T1, the single source of SLAs for every later stage;
- **class** is analytical: ``flops_per_byte = mlp_flops_per_item / emb_bytes_gathered_per_item``;
  ``memory-leaning`` below :data:`CLASS_THRESHOLD_FLOPS_PER_BYTE` (10 FLOP per gathered byte: a core does
  tens of GFLOP/s in dense layers but gathers random rows at a few GB/s, so around 10 FLOP/B both sides
  take comparable time), ``compute-leaning`` otherwise. It is a prior only; the scalability and memory
  profiles (F2/F3) measure the real behaviour and refine it.

Output: ``results/<scale>/tables/T1.csv`` (with provenance, :func:`hera.provenance.write_table`) and
``T1.md`` beside it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import statistics
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import numpy as np

CLASS_THRESHOLD_FLOPS_PER_BYTE = 10.0
BATCH_SIZES = (1, 64, 256)
INPUT_POOL = 4


@dataclass(frozen=True)
class T1Settings:
    """How T1 is measured (all fields are stored in the result's provenance)."""

    scale: str
    models: tuple[str, ...] | None = None
    batch_sizes: tuple[int, ...] = BATCH_SIZES
    batch_size: int = 64
    sla: tuple[tuple[str, Any], ...] = (("rule", "size_medians_p99"), ("multiplier", 3.0),
                                        ("jitter_floor_multiple", 20.0), ("targets_ms", ()), ("percentile", 0.95))
    repeats: int = 10
    warmup: int = 2
    seed: int = 0
    core: int | None = None
    quantized: bool = False
    models_root: str | None = None
    class_threshold_flops_per_byte: float = CLASS_THRESHOLD_FLOPS_PER_BYTE

    def sla_config(self) -> dict[str, Any]:
        d = dict(self.sla)
        d["targets_ms"] = dict(d.get("targets_ms") or ())
        return d


def settings_from_config(config: dict[str, Any], **kw: Any) -> T1Settings:
    """T1 settings from a validated study config (``hera.config``): models, seed, SLA, repeats, max items."""
    sla = dict(config["sla"])
    sla["targets_ms"] = tuple(sorted((k, float(v)) for k, v in (sla.get("targets_ms") or {}).items()))
    base = dict(scale=config["scale"], models=tuple(config["models"]), seed=int(config["seed"]),
                sla=tuple(sorted(sla.items())), batch_size=int(config["batch_size"]),
                repeats=int(config["profile"]["latency_repeats"]))
    base.update({k: v for k, v in kw.items() if v is not None})
    return T1Settings(**base)


def classify(flops_per_item: float, bytes_per_item: float,
             threshold: float = CLASS_THRESHOLD_FLOPS_PER_BYTE) -> tuple[str, float]:
    """``(class, flops_per_byte)`` from the analytical compute/gather ratio."""
    ratio = flops_per_item / bytes_per_item if bytes_per_item else float("inf")
    return ("memory-leaning" if ratio < threshold else "compute-leaning"), ratio


@contextlib.contextmanager
def pinned(core: int | None) -> Iterator[int]:
    """Run the block on one core with one torch thread; restore affinity and threads afterwards."""
    import torch

    before = os.sched_getaffinity(0)
    threads = torch.get_num_threads()
    cpu = min(before) if core is None else int(core)
    if cpu not in before:
        from hera.errors import ResourceError

        raise ResourceError(f"T1 asks for core {cpu} but this process may only use {sorted(before)}")
    os.sched_setaffinity(0, {cpu})
    torch.set_num_threads(1)
    try:
        yield cpu
    finally:
        torch.set_num_threads(threads)
        os.sched_setaffinity(0, before)


def measure_latency_ms(model, spec, n: int, repeats: int, warmup: int, rng: np.random.Generator) -> float:
    """Median wall time (ms) of ``make_inputs`` + ``forward`` for a sub-batch of ``n`` items."""
    import torch

    from hera.zoo.inputs import make_inputs, random_inputs

    pool = [random_inputs(spec, n, rng) for _ in range(min(INPUT_POOL, max(1, repeats)))]
    times = []
    with torch.inference_mode():
        for i in range(warmup + repeats):
            dense, ids = pool[i % len(pool)]
            t0 = time.perf_counter_ns()
            model(*make_inputs(spec, dense, ids))
            dt = time.perf_counter_ns() - t0
            if i >= warmup:
                times.append(dt / 1e6)
    return float(statistics.median(times))


def profile_model(model_id: str, settings: T1Settings) -> dict[str, Any]:
    """One T1 row (the caller pins the process; see :func:`pinned`)."""
    from hera.zoo.allocator import steady_heap
    from hera.zoo.load import built_spec, load_model, prefault, read_built_metadata

    steady_heap()  # as in the workers (hera.zoo.allocator)
    meta = read_built_metadata(model_id, settings.scale, settings.quantized, settings.models_root)
    spec = built_spec(model_id, settings.scale, settings.quantized, settings.models_root)
    model = load_model(model_id, settings.scale, settings.quantized, settings.models_root)
    prefault(model)
    rng = np.random.default_rng(np.random.SeedSequence([settings.seed, sum(map(ord, model_id))]))
    cls, ratio = classify(meta["mlp_flops_per_item"], meta["emb_bytes_gathered_per_item"],
                          settings.class_threshold_flops_per_byte)
    row: dict[str, Any] = {
        "model": model_id, "kind": meta["kind"], "params": meta["params"],
        "embedding_bytes": meta["embedding_bytes"], "mlp_flops_per_item": meta["mlp_flops_per_item"],
        "emb_bytes_gathered_per_item": meta["emb_bytes_gathered_per_item"],
        "lookups_per_item": meta["lookups_per_item"], "flops_per_byte": round(ratio, 3),
    }
    for b in settings.batch_sizes:
        lat = measure_latency_ms(model, spec, b, settings.repeats, settings.warmup, rng)
        row[f"latency_ms_b{b}"] = round(lat, 4)
    row.update({
        "class": cls,
        "class_rule": f"memory-leaning if mlp_flops_per_item / emb_bytes_gathered_per_item < "
                      f"{settings.class_threshold_flops_per_byte:g} FLOP/B "
                      "(analytical; refined by profiling)",
        "scale": settings.scale, "quantized": settings.quantized, "repeats": settings.repeats,
        "warmup": settings.warmup,
    })
    return row


def build_t1(settings: T1Settings, service):
    """The T1 table (pandas) for ``settings.models`` (default: every model of the zoo); ``service``: the
    service-profile quantile tables of those models (:func:`hera.profile.sla.read_summaries`), for the SLA."""
    import pandas as pd

    from hera.profile.sla import decide
    from hera.zoo.spec import list_models

    models = list(settings.models) if settings.models else list_models()
    slas = {m: decide(settings.sla_config(), m, service) for m in models}  # fail before measuring anything
    rows = []
    with pinned(settings.core) as cpu:
        for m in models:
            row = profile_model(m, settings)
            row["core"] = cpu
            row.update({k: (round(v, 4) if isinstance(v, float) else v) for k, v in slas[m].to_row().items()})
            rows.append(row)
    return pd.DataFrame(rows)


def _fmt(x: float, unit: str = "") -> str:
    for div, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(x) >= div:
            return f"{x / div:.2f} {suffix}{unit}"
    return f"{x:.0f} {unit}".rstrip()


def t1_markdown(df, settings: T1Settings, machine: str = "") -> str:
    """T1 as a Markdown table with the SLA and class rules underneath."""
    lat_cols = [c for c in df.columns if c.startswith("latency_ms_b")]
    head = ["model", "class", "params", "embedding", "FLOPs/item", "gathered/item", "FLOP/B",
            *[f"lat b{c[len('latency_ms_b'):]} (ms)" for c in lat_cols], "served p95 (ms)", "SLA (ms)",
            "headroom"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in df.to_dict("records"):
        cells = [r["model"], r["class"], _fmt(r["params"]), _fmt(r["embedding_bytes"], "B"),
                 _fmt(r["mlp_flops_per_item"]), _fmt(r["emb_bytes_gathered_per_item"], "B"),
                 f"{r['flops_per_byte']:.1f}", *[f"{r[c]:.3f}" for c in lat_cols],
                 f"{r['sla_ms'] / r['headroom']:.2f}", f"{r['sla_ms']:.2f}", f"{r['headroom']:.1f}x"]
        lines.append("| " + " | ".join(map(str, cells)) + " |")
    rules = sorted(set(df["sla_rule"].str.replace(r"\([0-9.e+-]+ ms\)", "(… ms)", regex=True)))
    notes = [f"Scale `{settings.scale}`, {'int8' if settings.quantized else 'fp32'} tables; `lat bN`: in-process "
             f"median of {settings.repeats} runs after {settings.warmup} warm-up runs of a sub-batch of N items, "
             "uniform random inputs, one pinned core.",
             "Served p95: unloaded latency of the production query-size mix on one worker through the node "
             "(service profile, sample-library ids; over each size's median under the rule size_medians_p99, "
             "column latency_ms_p95_size_medians, else pooled, latency_ms_p95_unloaded); headroom = SLA / served "
             "p95 (at least 2).",
             f"SLA rule: {'; '.join(rules)}.",
             f"Class: analytical, memory-leaning below {settings.class_threshold_flops_per_byte:g} FLOPs per "
             "gathered embedding byte, else compute-leaning; the scalability/memory profiles refine it."]
    if machine:
        notes.append(f"Machine: {machine}.")
    title = f"# T1 Model zoo (scale {settings.scale})\n\n"
    return title + "\n".join(lines) + "\n\n" + "\n\n".join(notes) + "\n"


def write_t1(settings: T1Settings, service, out_dir: str | Path | None = None,
             config: dict[str, Any] | None = None) -> tuple[Path, Path]:
    """Measure T1 and write ``T1.csv`` (+ provenance sidecar) and ``T1.md`` into ``out_dir``
    (default ``results/<scale>/tables``); ``service``: the models' service-profile quantile tables."""
    from hera.paths import results_dir
    from hera.machine import describe
    from hera.provenance import write_table

    out = Path(out_dir) if out_dir is not None else results_dir(settings.scale) / "tables"
    df = build_t1(settings, service)
    cfg = {"t1": dataclasses.asdict(settings), **({"study": config} if config else {})}
    csv = write_table(df, out / "T1.csv", config=cfg, seed=settings.seed)
    machine = describe()
    desc = f"{machine.get('cpu_model', 'unknown CPU')}, {machine.get('logical_cpus', '?')} logical CPUs"
    md = out / "T1.md"
    md.write_text(t1_markdown(df, settings, desc))
    return csv, md
