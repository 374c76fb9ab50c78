# Schema validation and small named helpers used by the rules (no lambdas in rules).
import itertools
import json
from pathlib import Path

from snakemake.exceptions import WorkflowError
from snakemake.utils import validate

from hera.config import check_model_ids, coerce_strings, point_visits, visit_repeats
from hera.errors import HeraError
from hera.profile.node_calibration import config_pairs
from hera.report.catalog import FIGURE_IDS, FIGURE_INPUTS, TABLE_IDS
from hera.topology import cpulist_or_none, study_plan


coerce_strings(config)  # nested --config values arrive as strings (YAML BaseLoader)
validate(config, schema="../schemas/config.schema.yaml")
check_model_ids(config)  # every model id names a spec in models/*.yaml (the zoo is the one list)

SCALE = config["scale"]
CAPTIONS = Path(workflow.current_basedir).parent / "report"  # workflow/report/<fig>.rst
RESULTS = f"results/{SCALE}"
FIGURES = f"figures/{SCALE}"
LOGS = f"logs/{SCALE}"
BENCH = f"benchmarks/{SCALE}"
STUDY_CONFIG = f"{RESULTS}/config.json"
CORE_PLAN = f"{RESULTS}/core_plan.json"
# The study's core plan (hera.topology), made now for the machine the study is planned for: this one, or the
# description file of config key `machine` / $HERA_MACHINE. Every measuring job takes CORE_PLAN as input, and the
# core_plan job checks at run time that the machine it runs on gives the same plan.
PLAN = study_plan(config)

def study_config_json(wildcards):
    """The validated study config (after --configfile and --config overrides) as one JSON string."""
    return json.dumps(config, sort_keys=True)


def models():
    """Model ids of this study, in config order."""
    return list(config["models"])


def colocation_models():
    """Models of the co-location study (config colocation.models, default: all study models)."""
    return list(config["colocation"].get("models") or models())


def pairs():
    """Every unordered pair of co-location models, as 'a__b' strings (a before b in config order)."""
    return [f"{a}__{b}" for a, b in itertools.combinations(colocation_models(), 2)]


def per_model(pattern):
    """Expand a path pattern with {model} over the study's models."""
    return expand(pattern, model=models())


def per_pair(pattern):
    """Expand a path pattern with {pair} over all model pairs."""
    return expand(pattern, pair=pairs())


def visits():
    """Independent visits of every measured F4 point (colocation.visits): the stage's passes over all pairs."""
    return point_visits(config)


def pair_visits(wildcards):
    """Every visit's points of one pair, in visit order (pooled by `hera profile pool-visits`)."""
    return [f"{RESULTS}/colocation/visits/{k}/{wildcards.pair}.csv" for k in range(1, visits() + 1)]


def all_visits():
    """Every visit's points of every pair (read together by `hera profile refresh`)."""
    return expand(f"{RESULTS}/colocation/visits/{{visit}}/{{pair}}.csv", visit=range(1, visits() + 1), pair=pairs())


def previous_pass(wildcards):
    """Every pair's previous visit: pass k of the stage starts once pass k - 1 is done (none before the first)."""
    k = int(wildcards.visit)
    return per_pair(f"{RESULTS}/colocation/visits/{k - 1}/{{pair}}.csv") if k > 1 else []


def figure_files(root):
    """PNG and PDF of every figure under root."""
    return expand(f"{root}/{{fig}}.{{ext}}", fig=FIGURE_IDS, ext=["png", "pdf"])


def table_files(root):
    """CSV and Markdown of every table under root."""
    return expand(f"{root}/tables/{{table}}.{{ext}}", table=TABLE_IDS, ext=["csv", "md"])


def all_outputs():
    """Everything the default target asks for: every figure and table (docs/METHOD.md §7)."""
    return figure_files(FIGURES) + table_files(RESULTS) + [f"{RESULTS}/machine.json", CORE_PLAN]


def planned_workers(wildcards):
    """Worker CPUs of the study's core plan (cpulist), as planned when the workflow was parsed."""
    return cpulist_or_none(PLAN.worker_cpus)


def planned_harness(wildcards):
    """Harness CPUs of the study's core plan (cpulist, or 'none')."""
    return cpulist_or_none(PLAN.harness_cpus)


def measurement_threads():
    """Measurements take every core Snakemake may use, so no other job runs beside one and two
    measurements never overlap. They also hold one unit of the resource `measurement`: pass
    `--resources measurement=1` to make that explicit, as the SLURM profile does per node.
    Without `--cores` (`--report`, `--dag`: nothing is executed) the value does not matter: 1."""
    try:
        return workflow.cores
    except WorkflowError:
        return 1


def figure_caption(wildcards):
    """The one-sentence caption of a figure, `workflow/report/<fig>.rst`, for the report's `figure.rst`
    (Snakemake does not expand wildcards in a caption path)."""
    return (CAPTIONS / f"{wildcards.fig}.rst").read_text().strip()


def pair_inputs(wildcards):
    """Built models and sample libraries of both members of a pair."""
    a, b = wildcards.pair.split("__")
    return [f"models/build/{SCALE}/{m}/meta.json" for m in (a, b)] + [
        f"datasets/{SCALE}/{m}/library.json" for m in (a, b)
    ]


def per_model_scalability_part(wildcards):
    """Per-model trial rows or modelled latency curves of the scalability stage (F9)."""
    return expand(f"{RESULTS}/profile/scalability/{{model}}.{wildcards.part}.csv", model=models())


def pair_service_profiles(wildcards):
    """Service profiles of both members of a pair, model a first."""
    return [f"{RESULTS}/profile/service/{m}.parquet" for m in wildcards.pair.split("__")]


def pair_interference_profiles(wildcards):
    """Interference profiles of both members of a pair, model a first."""
    return [f"{RESULTS}/profile/interference/{m}.csv" for m in wildcards.pair.split("__")]


def per_model_kind(wildcards):
    """Per-model files of one profile kind."""
    return expand(f"{RESULTS}/profile/{wildcards.kind}/{{model}}.csv", model=models())


def figure_inputs(wildcards):
    """Result files one figure is drawn from."""
    return [f"{RESULTS}/{name}" for name in FIGURE_INPUTS[wildcards.fig]]


def reference_figure_files():
    """PNG and PDF of every figure whose inputs the committed reference run has (a reference made by an older
    version can lack a newer figure's inputs)."""
    have = [fig for fig in FIGURE_IDS
            if all(Path(f"results/reference/{name}").is_file() for name in FIGURE_INPUTS[fig])]
    return expand("figures/reference/{fig}.{ext}", fig=have, ext=["png", "pdf"])


def reference_figure_inputs(wildcards):
    """Result files of the committed reference run that one figure is drawn from."""
    return [f"results/reference/{name}" for name in FIGURE_INPUTS[wildcards.fig]]


def parent_dir(wildcards, output):
    """Directory of the first output (where a command writes several files)."""
    return str(Path(output[0]).parent)


def results_root(wildcards, input):
    """The results directory read: inputs are <results root>/<stage>/<file>."""
    return str(Path(input[0]).parents[1])


def neighbour_enabled():
    """Whether the study measures neighbour profiles and predicts with them (interference.neighbour.enabled)."""
    return bool(((config.get("interference") or {}).get("neighbour") or {}).get("enabled", False))


def neighbour_reference(model):
    """The reference neighbour of a model: the first of interference.neighbour.reference that is not the model."""
    refs = list(config["interference"]["neighbour"]["reference"])
    return next(r for r in refs if r != model)


def neighbour_models(wildcards):
    """The model and its reference neighbour (the model first)."""
    return [wildcards.model, neighbour_reference(wildcards.model)]


def neighbour_builds(wildcards):
    """Built models and sample libraries of a model and its reference neighbour."""
    ms = neighbour_models(wildcards)
    return [f"models/build/{SCALE}/{m}/meta.json" for m in ms] + [f"datasets/{SCALE}/{m}/library.json" for m in ms]


def neighbour_service_profiles(wildcards):
    """Service profiles of a model and its reference neighbour."""
    return [f"{RESULTS}/profile/service/{m}.parquet" for m in neighbour_models(wildcards)]


def neighbour_interference_profiles(wildcards):
    """Interference profiles of a model and its reference neighbour."""
    return [f"{RESULTS}/profile/interference/{m}.csv" for m in neighbour_models(wildcards)]


def node_profile_file():
    """The node calibration the pair prediction reads as neighbour profiles (colocation.node_profile), or None."""
    return (config.get("colocation") or {}).get("node_profile")


def calibration_pairs():
    """The pairs the run calibrates the node on (colocation.node_calibration), as 'a__b' in study order."""
    return [f"{a}__{b}" for a, b in config_pairs(config)]


def per_calibration_pair(pattern):
    """Expand a path pattern with {pair} over the node calibration pairs."""
    return expand(pattern, pair=calibration_pairs())


def calibration_models():
    """Models of the node calibration pairs, in study order."""
    members = {m for p in calibration_pairs() for m in p.split("__")}
    return [m for m in models() if m in members]


def calibration_model_ids(wildcards):
    """The node calibration pairs' models as one comma-separated argument."""
    return ",".join(calibration_models())


def calibration_service_profiles(wildcards):
    """Service profiles of the node calibration pairs' models."""
    return [f"{RESULTS}/profile/service/{m}.parquet" for m in calibration_models()]


def calibration_interference_profiles(wildcards):
    """Interference profiles of the node calibration pairs' models."""
    return [f"{RESULTS}/profile/interference/{m}.csv" for m in calibration_models()]


def node_channel():
    """The file the pair prediction reads as every model's neighbour profile: the node calibration measured in
    this run (colocation.node_calibration), else the one given (colocation.node_profile), else None."""
    if calibration_pairs():
        return f"{RESULTS}/colocation/node_calibration.csv"
    return node_profile_file()


def neighbour_profiles(wildcards):
    """Every study model's neighbour profile where the channel is on, else the node calibration, else none."""
    if neighbour_enabled():
        return per_model(f"{RESULTS}/profile/neighbour/{{model}}.csv")
    return [node_channel()] if node_channel() else []


def pair_neighbour_profiles(wildcards):
    """Neighbour profiles of both members of a pair where the channel is on, else the node calibration, else none."""
    if neighbour_enabled():
        return [f"{RESULTS}/profile/neighbour/{m}.csv" for m in wildcards.pair.split("__")]
    return [node_channel()] if node_channel() else []


try:
    calibration_pairs()
except HeraError as e:
    raise WorkflowError(f"config key colocation.node_calibration: {e}") from None
if calibration_pairs():
    if node_profile_file() or neighbour_enabled():
        raise WorkflowError("config keys colocation.node_calibration and "
                            + ("colocation.node_profile" if node_profile_file() else "interference.neighbour.enabled")
                            + ": both give the prediction a neighbour channel; set one of them")
    _rays = {round(float(s), 6) for s in config["colocation"].get("rays") or (0.5, 0.75, 0.25)}
    if not {0.75, 0.5, 0.25} <= _rays:
        raise WorkflowError("config key colocation.node_calibration: the node calibration reads the rays 0.75, 0.5 "
                            f"and 0.25; colocation.rays is {sorted(_rays)}")
try:
    visit_repeats(config, visits())
except HeraError as e:
    raise WorkflowError(str(e)) from None
if node_profile_file():
    if neighbour_enabled():
        raise WorkflowError("config keys colocation.node_profile and interference.neighbour.enabled: both give the "
                            "prediction a neighbour channel; set one of them")
    if not Path(node_profile_file()).is_file():
        raise WorkflowError(f"config key colocation.node_profile: {node_profile_file()} does not exist (a path from "
                            f"the repository root; `hera bench pair-trials --node-profile FILE` writes one)")


if neighbour_enabled():
    _missing = [r for r in config["interference"]["neighbour"]["reference"] if r not in models()]
    if _missing:
        raise WorkflowError(f"config key interference.neighbour.reference: {_missing[0]!r} is not a model of this "
                            f"study (models: {', '.join(models())}); a reference neighbour must be built and profiled")
