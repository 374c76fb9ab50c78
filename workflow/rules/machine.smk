rule study_config:
    conda:
        "../envs/hera.yaml"
    output:
        STUDY_CONFIG,
    log:
        f"{LOGS}/config.log",
    params:
        study=study_config_json,
    shell:
        "hera config write --json {params.study:q} --out {output} > {log} 2>&1"


rule machine_description:
    conda:
        "../envs/hera.yaml"
    output:
        f"{RESULTS}/machine.json",
    log:
        f"{LOGS}/machine.log",
    resources:
        measurement=1,
    threads: measurement_threads()
    shell:
        "hera machine --bandwidth --out {output} > {log} 2>&1"


rule core_plan:
    conda:
        "../envs/hera.yaml"
    input:
        config=STUDY_CONFIG,
    output:
        CORE_PLAN,
    log:
        f"{LOGS}/core_plan.log",
    params:
        workers=planned_workers,
        harness=planned_harness,
    shell:
        "hera topology --config {input.config} --expect-workers {params.workers} --expect-harness {params.harness}"
        " --out {output} > {log} 2>&1"
