rule study_config:
    output:
        STUDY_CONFIG,
    log:
        f"{LOGS}/config.log",
    params:
        config=config,
    run:
        import json, pathlib

        pathlib.Path(output[0]).write_text(json.dumps(params.config, indent=2, sort_keys=True) + "\n")


rule machine_description:
    output:
        f"{RESULTS}/machine.json",
    log:
        f"{LOGS}/machine.log",
    resources:
        measurement=1,
    threads: measurement_threads()
    shell:
        "hera machine --bandwidth --out {output} > {log} 2>&1"
