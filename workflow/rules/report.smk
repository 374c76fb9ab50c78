# Figures and tables: pure functions of result files (hera.report never imports the server or the zoo).

rule figure:
    conda:
        "../envs/hera.yaml"
    input:
        figure_inputs,
    output:
        png=report(f"{FIGURES}/{{fig}}.png", caption="../report/figure.rst", category="Figures"),
        pdf=f"{FIGURES}/{{fig}}.pdf",
    log:
        f"{LOGS}/figures/{{fig}}.log",
    params:
        results=results_root,
        out=parent_dir,
        caption=figure_caption,
    shell:
        "hera report figure {wildcards.fig} --results {params.results} --out {params.out} > {log} 2>&1"


rule t2_table:
    conda:
        "../envs/hera.yaml"
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
        results=results_root,
        out=parent_dir,
    shell:
        "hera report t2 --results {params.results} --out {params.out} > {log} 2>&1"


rule reference_figure:
    conda:
        "../envs/hera.yaml"
    input:
        reference_figure_inputs,
    output:
        png="figures/reference/{fig}.png",
        pdf="figures/reference/{fig}.pdf",
    log:
        "logs/reference/figures/{fig}.log",
    params:
        results=results_root,
        out=parent_dir,
    shell:
        "hera report figure {wildcards.fig} --results {params.results} --out {params.out} > {log} 2>&1"


rule reference_figures:
    conda:
        "../envs/hera.yaml"
    input:
        reference_figure_files(),
