# Policies on profile tables: EMU per policy (F5), prediction accuracy, servers needed per mix (F8). Hera decides
# from the pair predictions (O(N) profiles); the oracle and the baselines plan on the measured co-location
# points, on which Hera's plans are evaluated.


rule policy_emu:
    conda:
        "../envs/hera.yaml"
    input:
        pairs=f"{RESULTS}/colocation/pairs.csv",
        predicted=f"{RESULTS}/colocation/predicted.csv",
        scalability=f"{RESULTS}/profile/scalability.csv",
        t1=f"{RESULTS}/tables/T1.csv",
        config=STUDY_CONFIG,
    output:
        emu=f"{RESULTS}/policy/emu.csv",
        plans=f"{RESULTS}/policy/plans.json",
        prediction_errors=f"{RESULTS}/policy/prediction_errors.csv",
    log:
        f"{LOGS}/policy/emu.log",
    params:
        out=parent_dir,
    shell:
        "hera policy evaluate --config {input.config} --pairs {input.pairs} --predicted {input.predicted}"
        " --scalability {input.scalability} --t1 {input.t1} --out {params.out} > {log} 2>&1"


rule servers_needed:
    conda:
        "../envs/hera.yaml"
    input:
        pairs=f"{RESULTS}/colocation/pairs.csv",
        predicted=f"{RESULTS}/colocation/predicted.csv",
        scalability=f"{RESULTS}/profile/scalability.csv",
        t1=f"{RESULTS}/tables/T1.csv",
        config=STUDY_CONFIG,
    output:
        f"{RESULTS}/cluster/servers.csv",
    log:
        f"{LOGS}/cluster/servers.log",
    shell:
        "hera cluster provision --config {input.config} --pairs {input.pairs} --predicted {input.predicted}"
        " --scalability {input.scalability} --t1 {input.t1} --out {output} > {log} 2>&1"
