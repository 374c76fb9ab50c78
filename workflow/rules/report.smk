# Figures and tables: pure functions of result files (hera.report never imports the server or the zoo).

FIGURE_INPUTS = {
    "F1": ["profile/latency.csv"],
    "F2": ["profile/scalability.csv"],
    "F3": ["profile/memory.csv"],
    "F4": ["colocation/pairs.csv"],
    "F5": ["policy/emu.csv"],
    "F6": ["serving/latency_vs_load.csv"],
    "F7": ["serving/load_change.csv", "serving/moves.csv"],
    "F8": ["cluster/servers.csv"],
}


def figure_inputs(wildcards):
    """Result files one figure is drawn from."""
    return [f"{RESULTS}/{name}" for name in FIGURE_INPUTS[wildcards.fig]]


def reference_figure_inputs(wildcards):
    """Result files of the committed reference run that one figure is drawn from."""
    return [f"results/reference/{name}" for name in FIGURE_INPUTS[wildcards.fig]]


rule figure:
    input:
        figure_inputs,
    output:
        png=report(f"{FIGURES}/{{fig}}.png", caption="../report/{fig}.rst", category="Figures"),
        pdf=f"{FIGURES}/{{fig}}.pdf",
    log:
        f"{LOGS}/figures/{{fig}}.log",
    params:
        results=RESULTS,
        out=FIGURES,
    shell:
        "hera report figure {wildcards.fig} --results {params.results} --out {params.out} > {log} 2>&1"


rule t2_table:
    input:
        t1=f"{RESULTS}/tables/T1.csv",
        scalability=f"{RESULTS}/profile/scalability.csv",
        pairs=f"{RESULTS}/colocation/pairs.csv",
        emu=f"{RESULTS}/policy/emu.csv",
        servers=f"{RESULTS}/cluster/servers.csv",
        load_change=f"{RESULTS}/serving/load_change.csv",
    output:
        csv=report(f"{RESULTS}/tables/T2.csv", caption="../report/T2.rst", category="Tables"),
        md=f"{RESULTS}/tables/T2.md",
    log:
        f"{LOGS}/tables/T2.log",
    params:
        results=RESULTS,
        out=f"{RESULTS}/tables",
    shell:
        "hera report t2 --results {params.results} --out {params.out} > {log} 2>&1"


rule reference_figure:
    input:
        reference_figure_inputs,
    output:
        png="figures/reference/{fig}.png",
        pdf="figures/reference/{fig}.pdf",
    log:
        "logs/reference/figures/{fig}.log",
    shell:
        "hera report figure {wildcards.fig} --results results/reference --out figures/reference > {log} 2>&1"


rule reference_figures:
    input:
        figure_files("figures/reference"),
