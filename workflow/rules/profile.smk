# Isolated profiling of each model (F1 latency vs sub-batch, F2 worker scalability, F3 memory behaviour).


rule latency_profile:
    conda:
        "../envs/hera.yaml"
    input:
        model=f"models/build/{SCALE}/{{model}}/meta.json",
        library=f"datasets/{SCALE}/{{model}}/library.json",
        config=STUDY_CONFIG,
        plan=CORE_PLAN,
    output:
        f"{RESULTS}/profile/latency/{{model}}.csv",
    log:
        f"{LOGS}/profile/latency/{{model}}.log",
    benchmark:
        f"{BENCH}/profile/latency/{{model}}.tsv"
    resources:
        measurement=1,
    threads: measurement_threads()
    shell:
        "hera profile latency --config {input.config} --model {wildcards.model} --out {output} > {log} 2>&1"


rule scalability_profile:
    conda:
        "../envs/hera.yaml"
    input:
        model=f"models/build/{SCALE}/{{model}}/meta.json",
        library=f"datasets/{SCALE}/{{model}}/library.json",
        t1=f"{RESULTS}/tables/T1.csv",
        config=STUDY_CONFIG,
        plan=CORE_PLAN,
    output:
        f"{RESULTS}/profile/scalability/{{model}}.csv",
    log:
        f"{LOGS}/profile/scalability/{{model}}.log",
    benchmark:
        f"{BENCH}/profile/scalability/{{model}}.tsv"
    resources:
        measurement=1,
    threads: measurement_threads()
    shell:
        "hera profile scalability --config {input.config} --model {wildcards.model} --t1 {input.t1}"
        " --out {output} > {log} 2>&1"


rule memory_profile:
    conda:
        "../envs/hera.yaml"
    input:
        model=f"models/build/{SCALE}/{{model}}/meta.json",
        library=f"datasets/{SCALE}/{{model}}/library.json",
        config=STUDY_CONFIG,
        plan=CORE_PLAN,
    output:
        f"{RESULTS}/profile/memory/{{model}}.csv",
    log:
        f"{LOGS}/profile/memory/{{model}}.log",
    benchmark:
        f"{BENCH}/profile/memory/{{model}}.tsv"
    resources:
        measurement=1,
    threads: measurement_threads()
    shell:
        "hera profile memory --config {input.config} --model {wildcards.model} --out {output} > {log} 2>&1"


rule profile_table:
    conda:
        "../envs/hera.yaml"
    input:
        per_model_kind,
    output:
        f"{RESULTS}/profile/{{kind}}.csv",
    log:
        f"{LOGS}/profile/{{kind}}.log",
    wildcard_constraints:
        kind="latency|scalability|memory",
    shell:
        "hera results concat --out {output} {input} > {log} 2>&1"
