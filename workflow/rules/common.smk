# Schema validation and small named helpers used by the rules (no lambdas in rules).
import itertools

from snakemake.utils import validate


validate(config, schema="../schemas/config.schema.yaml")

SCALE = config["scale"]
RESULTS = f"results/{SCALE}"
FIGURES = f"figures/{SCALE}"
LOGS = f"logs/{SCALE}"
BENCH = f"benchmarks/{SCALE}"
FIGURE_IDS = ["F1", "F2", "F3", "F4", "F5", "F6", "F7", "F8"]
TABLE_IDS = ["T1", "T2"]
STUDY_CONFIG = f"{RESULTS}/config.json"

wildcard_constraints:
    model="[a-z0-9_]+",
    pair="[a-z0-9_]+__[a-z0-9_]+",
    fig="F[1-8]",


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


def figure_files(root):
    """PNG and PDF of every figure under root."""
    return expand(f"{root}/{{fig}}.{{ext}}", fig=FIGURE_IDS, ext=["png", "pdf"])


def table_files(root):
    """CSV and Markdown of every table under root."""
    return expand(f"{root}/tables/{{table}}.{{ext}}", table=TABLE_IDS, ext=["csv", "md"])


def all_outputs():
    """Everything `rule all` asks for: every figure and table of SPEC section 7."""
    return figure_files(FIGURES) + table_files(RESULTS)


def measurement_threads():
    """Measurements take every core Snakemake may use, so no other job runs beside one and two
    measurements never overlap. They also hold one unit of the resource `measurement`: pass
    `--resources measurement=1` to make that explicit, as the SLURM profile does per node."""
    return workflow.cores


def pair_inputs(wildcards):
    """Built models and sample libraries of both members of a pair."""
    a, b = wildcards.pair.split("__")
    return [f"models/build/{SCALE}/{m}/meta.json" for m in (a, b)] + [
        f"datasets/{SCALE}/{m}/library.json" for m in (a, b)
    ]
