# Co-location: every pair on every split predicted from O(N) profiles, then measured at the splits that matter
# (predicted best, neighbours, shared LLC), three points of the feasible region each (F4). With
# colocation.node_calibration, a few pairs outside the study's are measured first and calibrate the node's
# loaded-neighbour slowdown for every prediction (colocation/calibration/, colocation/node_calibration.csv). With
# colocation.visits V > 1, every scored pair is visited V times, in V passes over all pairs (colocation/visits/<k>/),
# and its visits are pooled (colocation/pairs/). The table of every pair (colocation/pairs.csv) carries beside each
# point the refreshed prediction: each model's solo speed from its anchors in the pass's other sittings.


rule pair_predictions:
    conda:
        "../envs/hera.yaml"
    input:
        service=per_model(f"{RESULTS}/profile/service/{{model}}.parquet"),
        interference=per_model(f"{RESULTS}/profile/interference/{{model}}.csv"),
        neighbour=neighbour_profiles,
        calibration=f"{RESULTS}/profile/interference_calibration.csv",
        t1=f"{RESULTS}/tables/T1.csv",
        scalability=f"{RESULTS}/profile/scalability.csv",
        config=STUDY_CONFIG,
    output:
        f"{RESULTS}/colocation/predicted.csv",
    log:
        f"{LOGS}/colocation/predicted.log",
    benchmark:
        f"{BENCH}/colocation/predicted.tsv"
    params:
        models=",".join(models()),
    shell:
        "hera profile predict-pairs --config {input.config} --models {params.models} --t1 {input.t1}"
        " --scalability {input.scalability} --service {input.service} --interference {input.interference}"
        " --calibration {input.calibration} --neighbour {input.neighbour} --out {output} > {log} 2>&1"


rule colocation_visit:
    conda:
        "../envs/hera.yaml"
    input:
        previous=previous_pass,
        models=pair_inputs,
        service=pair_service_profiles,
        interference=pair_interference_profiles,
        neighbour=pair_neighbour_profiles,
        calibration=f"{RESULTS}/profile/interference_calibration.csv",
        t1=f"{RESULTS}/tables/T1.csv",
        scalability=f"{RESULTS}/profile/scalability.csv",
        predicted=f"{RESULTS}/colocation/predicted.csv",
        config=STUDY_CONFIG,
        plan=CORE_PLAN,
    output:
        points=f"{RESULTS}/colocation/visits/{{visit}}/{{pair}}.csv",
        trials=f"{RESULTS}/colocation/visits/{{visit}}/{{pair}}.trials.csv",
    log:
        f"{LOGS}/colocation/visits/{{visit}}/{{pair}}.log",
    benchmark:
        f"{BENCH}/colocation/visits/{{visit}}/{{pair}}.tsv"
    resources:
        measurement=1,
    threads: measurement_threads()
    shell:
        "hera profile colocation --config {input.config} --pair {wildcards.pair} --visit {wildcards.visit}"
        " --t1 {input.t1} --scalability {input.scalability} --predicted {input.predicted} --service {input.service}"
        " --interference {input.interference} --calibration {input.calibration} --neighbour {input.neighbour}"
        " --out {output.points} > {log} 2>&1"


rule colocation_profile:
    conda:
        "../envs/hera.yaml"
    input:
        visits=pair_visits,
        config=STUDY_CONFIG,
    output:
        points=f"{RESULTS}/colocation/pairs/{{pair}}.csv",
        trials=f"{RESULTS}/colocation/pairs/{{pair}}.trials.csv",
    log:
        f"{LOGS}/colocation/{{pair}}.log",
    shell:
        "hera profile pool-visits --config {input.config} --points {input.visits} --out {output.points} > {log} 2>&1"


rule calibration_pair_predictions:
    conda:
        "../envs/hera.yaml"
    input:
        service=calibration_service_profiles,
        interference=calibration_interference_profiles,
        calibration=f"{RESULTS}/profile/interference_calibration.csv",
        t1=f"{RESULTS}/tables/T1.csv",
        scalability=f"{RESULTS}/profile/scalability.csv",
        config=STUDY_CONFIG,
    output:
        f"{RESULTS}/colocation/calibration/predicted.csv",
    log:
        f"{LOGS}/colocation/calibration/predicted.log",
    benchmark:
        f"{BENCH}/colocation/calibration/predicted.tsv"
    params:
        models=calibration_model_ids,
    shell:
        "hera profile predict-pairs --config {input.config} --models {params.models} --t1 {input.t1}"
        " --scalability {input.scalability} --service {input.service} --interference {input.interference}"
        " --calibration {input.calibration} --out {output} > {log} 2>&1"


rule calibration_pair_profile:
    conda:
        "../envs/hera.yaml"
    input:
        models=pair_inputs,
        service=pair_service_profiles,
        interference=pair_interference_profiles,
        calibration=f"{RESULTS}/profile/interference_calibration.csv",
        t1=f"{RESULTS}/tables/T1.csv",
        scalability=f"{RESULTS}/profile/scalability.csv",
        predicted=f"{RESULTS}/colocation/calibration/predicted.csv",
        config=STUDY_CONFIG,
        plan=CORE_PLAN,
    output:
        points=f"{RESULTS}/colocation/calibration/pairs/{{pair}}.csv",
        trials=f"{RESULTS}/colocation/calibration/pairs/{{pair}}.trials.csv",
    log:
        f"{LOGS}/colocation/calibration/{{pair}}.log",
    benchmark:
        f"{BENCH}/colocation/calibration/{{pair}}.tsv"
    resources:
        measurement=1,
    threads: measurement_threads()
    shell:
        "hera profile colocation --config {input.config} --pair {wildcards.pair} --t1 {input.t1}"
        " --scalability {input.scalability} --predicted {input.predicted} --service {input.service}"
        " --interference {input.interference} --calibration {input.calibration} --out {output.points} > {log} 2>&1"


rule node_calibration:
    conda:
        "../envs/hera.yaml"
    input:
        trials=per_calibration_pair(f"{RESULTS}/colocation/calibration/pairs/{{pair}}.trials.csv"),
        predicted=f"{RESULTS}/colocation/calibration/predicted.csv",
        service=calibration_service_profiles,
        scalability=f"{RESULTS}/profile/scalability.csv",
        config=STUDY_CONFIG,
    output:
        f"{RESULTS}/colocation/node_calibration.csv",
    log:
        f"{LOGS}/colocation/node_calibration.log",
    shell:
        "hera profile node-calibration --config {input.config} --predicted {input.predicted}"
        " --scalability {input.scalability} --service {input.service} --trials {input.trials} --out {output}"
        " > {log} 2>&1"


rule colocation_table:
    conda:
        "../envs/hera.yaml"
    input:
        pairs=per_pair(f"{RESULTS}/colocation/pairs/{{pair}}.csv"),
        visits=all_visits(),
        service=per_model(f"{RESULTS}/profile/service/{{model}}.parquet"),
        interference=per_model(f"{RESULTS}/profile/interference/{{model}}.csv"),
        neighbour=neighbour_profiles,
        calibration=f"{RESULTS}/profile/interference_calibration.csv",
        t1=f"{RESULTS}/tables/T1.csv",
        scalability=f"{RESULTS}/profile/scalability.csv",
        config=STUDY_CONFIG,
    output:
        f"{RESULTS}/colocation/pairs.csv",
    log:
        f"{LOGS}/colocation/pairs.log",
    benchmark:
        f"{BENCH}/colocation/pairs.tsv"
    shell:
        "hera profile refresh --config {input.config} --visits {input.visits} --pairs {input.pairs} --t1 {input.t1}"
        " --scalability {input.scalability} --service {input.service} --interference {input.interference}"
        " --calibration {input.calibration} --neighbour {input.neighbour} --out {output} > {log} 2>&1"
