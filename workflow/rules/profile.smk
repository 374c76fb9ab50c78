# Isolated profiling of each model: service times through the serving path (SLA, QPS* model), F1 latency vs
# sub-batch, F2/F9 worker scalability modelled and measured, F3 interference (sensitivity to antagonists and
# pressure on a reporter, on one scale through the study's calibration curve).


rule service_profile:
    conda:
        "../envs/hera.yaml"
    input:
        model=f"models/build/{SCALE}/{{model}}/meta.json",
        library=f"datasets/{SCALE}/{{model}}/library.json",
        config=STUDY_CONFIG,
        plan=CORE_PLAN,
    output:
        samples=f"{RESULTS}/profile/service/{{model}}.parquet",
        summary=f"{RESULTS}/profile/service/{{model}}.csv",
    log:
        f"{LOGS}/profile/service/{{model}}.log",
    benchmark:
        f"{BENCH}/profile/service/{{model}}.tsv"
    resources:
        measurement=1,
    threads: measurement_threads()
    shell:
        "hera profile service --config {input.config} --model {wildcards.model} --out {output.summary} > {log} 2>&1"


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
        service=f"{RESULTS}/profile/service/{{model}}.parquet",
        t1=f"{RESULTS}/tables/T1.csv",
        config=STUDY_CONFIG,
        plan=CORE_PLAN,
    output:
        rows=f"{RESULTS}/profile/scalability/{{model}}.csv",
        trials=f"{RESULTS}/profile/scalability/{{model}}.trials.csv",
        curve=f"{RESULTS}/profile/scalability/{{model}}.curve.csv",
        service=f"{RESULTS}/profile/scalability/{{model}}.service.parquet",
    log:
        f"{LOGS}/profile/scalability/{{model}}.log",
    benchmark:
        f"{BENCH}/profile/scalability/{{model}}.tsv"
    resources:
        measurement=1,
    threads: measurement_threads()
    shell:
        "hera profile scalability --config {input.config} --model {wildcards.model} --service {input.service}"
        " --t1 {input.t1} --out {output.rows} > {log} 2>&1"


rule interference_calibration:
    conda:
        "../envs/hera.yaml"
    input:
        config=STUDY_CONFIG,
        plan=CORE_PLAN,
    output:
        table=f"{RESULTS}/profile/interference_calibration.csv",
        samples=f"{RESULTS}/profile/interference_calibration.parquet",
    log:
        f"{LOGS}/profile/interference_calibration.log",
    benchmark:
        f"{BENCH}/profile/interference_calibration.tsv"
    resources:
        measurement=1,
    threads: measurement_threads()
    shell:
        "hera profile interference-calibration --config {input.config} --out {output.table} > {log} 2>&1"


rule interference_profile:
    conda:
        "../envs/hera.yaml"
    input:
        model=f"models/build/{SCALE}/{{model}}/meta.json",
        library=f"datasets/{SCALE}/{{model}}/library.json",
        service=f"{RESULTS}/profile/service/{{model}}.csv",
        calibration=f"{RESULTS}/profile/interference_calibration.csv",
        config=STUDY_CONFIG,
        plan=CORE_PLAN,
    output:
        table=f"{RESULTS}/profile/interference/{{model}}.csv",
        samples=f"{RESULTS}/profile/interference/{{model}}.parquet",
    log:
        f"{LOGS}/profile/interference/{{model}}.log",
    benchmark:
        f"{BENCH}/profile/interference/{{model}}.tsv"
    resources:
        measurement=1,
    threads: measurement_threads()
    shell:
        "hera profile interference --config {input.config} --model {wildcards.model} --service {input.service}"
        " --calibration {input.calibration} --out {output.table} > {log} 2>&1"


rule neighbour_profile:
    conda:
        "../envs/hera.yaml"
    input:
        models=neighbour_builds,
        service=neighbour_service_profiles,
        interference=neighbour_interference_profiles,
        calibration=f"{RESULTS}/profile/interference_calibration.csv",
        t1=f"{RESULTS}/tables/T1.csv",
        scalability=f"{RESULTS}/profile/scalability.csv",
        config=STUDY_CONFIG,
        plan=CORE_PLAN,
    output:
        table=f"{RESULTS}/profile/neighbour/{{model}}.csv",
        windows=f"{RESULTS}/profile/neighbour/{{model}}.windows.csv",
    log:
        f"{LOGS}/profile/neighbour/{{model}}.log",
    benchmark:
        f"{BENCH}/profile/neighbour/{{model}}.tsv"
    resources:
        measurement=1,
    threads: measurement_threads()
    shell:
        "hera profile neighbour --config {input.config} --model {wildcards.model} --t1 {input.t1}"
        " --scalability {input.scalability} --service {input.service} --interference {input.interference}"
        " --calibration {input.calibration} --out {output.table} > {log} 2>&1"


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
        kind="latency|scalability|interference",
    shell:
        "hera results concat --out {output} {input} > {log} 2>&1"


rule scalability_part_table:
    conda:
        "../envs/hera.yaml"
    input:
        per_model_scalability_part,
    output:
        f"{RESULTS}/profile/scalability_{{part}}.csv",
    log:
        f"{LOGS}/profile/scalability_{{part}}.log",
    wildcard_constraints:
        part="trials|curve",
    shell:
        "hera results concat --out {output} {input} > {log} 2>&1"
