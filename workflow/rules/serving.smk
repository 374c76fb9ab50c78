# Experiments on the real server: tail latency vs load per policy (F6), load changes over time (F7).


rule latency_vs_load:
    conda:
        "../envs/hera.yaml"
    input:
        plans=f"{RESULTS}/policy/plans.json",
        t1=f"{RESULTS}/tables/T1.csv",
        libraries=per_model(f"datasets/{SCALE}/{{model}}/library.json"),
        config=STUDY_CONFIG,
        plan=CORE_PLAN,
    output:
        f"{RESULTS}/serving/latency_vs_load.csv",
    log:
        f"{LOGS}/serving/latency_vs_load.log",
    benchmark:
        f"{BENCH}/serving/latency_vs_load.tsv"
    resources:
        measurement=1,
    threads: measurement_threads()
    shell:
        "hera experiment latency-vs-load --config {input.config} --plans {input.plans} --t1 {input.t1}"
        " --out {output} > {log} 2>&1"


rule load_change:
    conda:
        "../envs/hera.yaml"
    input:
        plans=f"{RESULTS}/policy/plans.json",
        pairs=f"{RESULTS}/colocation/pairs.csv",
        scalability=f"{RESULTS}/profile/scalability.csv",
        t1=f"{RESULTS}/tables/T1.csv",
        libraries=per_model(f"datasets/{SCALE}/{{model}}/library.json"),
        config=STUDY_CONFIG,
        plan=CORE_PLAN,
    output:
        timeline=f"{RESULTS}/serving/load_change.csv",
        moves=f"{RESULTS}/serving/moves.csv",
    log:
        f"{LOGS}/serving/load_change.log",
    benchmark:
        f"{BENCH}/serving/load_change.tsv"
    resources:
        measurement=1,
    threads: measurement_threads()
    params:
        out=parent_dir,
    shell:
        "hera experiment load-change --config {input.config} --plans {input.plans} --pairs {input.pairs}"
        " --scalability {input.scalability} --t1 {input.t1} --out {params.out} > {log} 2>&1"
