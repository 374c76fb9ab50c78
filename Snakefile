# Hera artifact pipeline: machine -> models -> sample libraries -> profiles -> co-location -> policies
# -> server experiments -> provisioning -> figures and tables -> claims (T2).
# Run:  snakemake --cores all                      (default scale, sized from this machine)
#       snakemake --cores all --configfile workflow/config/ci.yaml
#       snakemake --cores all reference_figures    (figures from results/reference, no experiments)

from snakemake.utils import min_version

min_version("9.0")


configfile: "workflow/config/default.yaml"


include: "workflow/rules/common.smk"


wildcard_constraints:
    model="[a-z0-9_]+",
    pair="[a-z0-9_]+__[a-z0-9_]+",
    visit="[1-9][0-9]*",
    fig="|".join(FIGURE_IDS),


include: "workflow/rules/machine.smk"
include: "workflow/rules/models.smk"
include: "workflow/rules/profile.smk"
include: "workflow/rules/colocation.smk"
include: "workflow/rules/policy.smk"
include: "workflow/rules/serving.smk"
include: "workflow/rules/report.smk"


rule all:
    input:
        all_outputs(),
    default_target: True
