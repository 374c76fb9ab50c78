rule built_model:
    conda:
        "../envs/hera.yaml"
    input:
        spec="models/{model}.yaml",
    output:
        f"models/build/{SCALE}/{{model}}/meta.json",
    log:
        f"{LOGS}/models/{{model}}.log",
    benchmark:
        f"{BENCH}/models/{{model}}.tsv"
    params:
        scale=SCALE,
        seed=config["seed"],
    shell:
        "hera models build --scale {params.scale} --models {wildcards.model} --seed {params.seed} --force"
        " > {log} 2>&1"


rule sample_library:
    conda:
        "../envs/hera.yaml"
    input:
        spec="models/{model}.yaml",
    output:
        f"datasets/{SCALE}/{{model}}/library.json",
    log:
        f"{LOGS}/datasets/{{model}}.log",
    benchmark:
        f"{BENCH}/datasets/{{model}}.tsv"
    params:
        scale=SCALE,
        n_items=config["library"]["items"],
        ids=config["library"]["ids"],
        seed=config["seed"],
    shell:
        "hera workload library --scale {params.scale} --models {wildcards.model} --items {params.n_items}"
        " --ids {params.ids} --seed {params.seed} > {log} 2>&1"


rule t1_table:
    conda:
        "../envs/hera.yaml"
    input:
        models=per_model(f"models/build/{SCALE}/{{model}}/meta.json"),
        config=STUDY_CONFIG,
        plan=CORE_PLAN,
    output:
        csv=f"{RESULTS}/tables/T1.csv",
        md=f"{RESULTS}/tables/T1.md",
    log:
        f"{LOGS}/tables/T1.log",
    benchmark:
        f"{BENCH}/tables/T1.tsv"
    resources:
        measurement=1,
    threads: measurement_threads()
    params:
        scale=SCALE,
        out=parent_dir,
    shell:
        "hera table t1 --scale {params.scale} --config {input.config} --out {params.out} > {log} 2>&1"
