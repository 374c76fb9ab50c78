# Co-location profiling: every model pair under every core (and LLC-way) split; EMU per split (F4).


rule colocation_profile:
    conda:
        "../envs/hera.yaml"
    input:
        models=pair_inputs,
        t1=f"{RESULTS}/tables/T1.csv",
        scalability=f"{RESULTS}/profile/scalability.csv",
        config=STUDY_CONFIG,
        plan=CORE_PLAN,
    output:
        f"{RESULTS}/colocation/pairs/{{pair}}.csv",
    log:
        f"{LOGS}/colocation/{{pair}}.log",
    benchmark:
        f"{BENCH}/colocation/{{pair}}.tsv"
    resources:
        measurement=1,
    threads: measurement_threads()
    shell:
        "hera profile colocation --config {input.config} --pair {wildcards.pair} --t1 {input.t1}"
        " --scalability {input.scalability} --out {output} > {log} 2>&1"


rule colocation_table:
    conda:
        "../envs/hera.yaml"
    input:
        per_pair(f"{RESULTS}/colocation/pairs/{{pair}}.csv"),
    output:
        f"{RESULTS}/colocation/pairs.csv",
    log:
        f"{LOGS}/colocation/pairs.log",
    shell:
        "hera results concat --out {output} {input} > {log} 2>&1"
