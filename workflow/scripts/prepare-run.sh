#!/usr/bin/env bash
# Write the whole pipeline for a config as one plain bash script that needs no Snakemake to run: for a machine
# that has the package's runtime but not Snakemake (a lent multicore server without a package index, where
# Snakemake and its dependencies would not fit in what can be carried; README "Offline").
#   bash workflow/scripts/prepare-run.sh OUT.sh --configfile workflow/config/multicore-quick.yaml [snakemake args]
# Then, on the target, in the repository root, with the environment's bin on PATH (with-env.sh --without
# snakemake):  bash OUT.sh [DEADLINE_S]
# OUT.sh runs Snakemake's own jobs, in the order of its dry run (`snakemake all -n -p --forceall`), one at a time;
# each job's output and log folders are made first, and a job that fails stops the script with its log's tail.
# Every job appends `rule, seconds, rc` to results/<scale>/prepared-run.tsv. With DEADLINE_S, a job that would
# start after that many seconds is not started (the script says which and exits 3): what finished stays valid.
# The core plan is made on the machine the script runs on: the dry run's expectation of it (`hera topology
# --expect-workers/--expect-harness`, the planning machine's cores) is left out. Nothing else of the plan enters a
# command: every measuring job reads results/<scale>/core_plan.json when it runs.
set -euo pipefail
die() { echo "prepare-run: error: $*" >&2; exit 2; }
[ $# -ge 1 ] || die "usage: prepare-run.sh OUT.sh --configfile CONFIG [snakemake args]"
out="$1"; shift
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"
dry="$(mktemp)"
trap 'rm -f "$dry"' EXIT
if command -v snakemake >/dev/null; then smk=(snakemake); else smk=(bash workflow/scripts/with-env.sh snakemake); fi
"${smk[@]}" all -n -p --forceall "$@" > "$dry" 2>&1 \
  || { tail -20 "$dry" >&2; die "the dry run failed (above)"; }
scale="$(sed -n 's/^Shell command: hera config write .*--out results\/\([a-z0-9_-]*\)\/config.json.*/\1/p' "$dry" | head -1)"
[ -n "$scale" ] || die "the dry run has no study_config job (is this the Hera workflow?)"
awk '
function paths(list, is_output,   n, parts, i, d) {  # the folder of each path is made first; outputs are recorded
  n = split(list, parts, /, /)
  for (i = 1; i <= n; i++) {
    d = parts[i]; sub(/\/[^\/]*$/, "", d); if (d != parts[i]) need[d] = 1
    if (is_output) outs[parts[i]] = 1
  }
}
function reset() { delete need; delete outs; mk = ""; rule = ""; shell = ""; nin = 0 }
function flush(   d, k, i, cmd) {
  if (rule == "" || shell == "" || shell == "None") { reset(); return }  # `all` runs nothing
  jobs++
  for (d in need) mk = mk " " d
  cmd = shell
  if (rule == "core_plan") gsub(/ --expect-(workers|harness) [^ ]+/, "", cmd)
  printf "job %d %s \"%s\" <<'\''HERA_JOB'\''\n%s\nHERA_JOB\n\n", jobs, rule, substr(mk, 2), cmd
  for (i = 1; i <= nin; i++) if (!(inputs[i] in made) && (inputs[i] in later)) bad = bad " " rule ":" inputs[i]
  for (k in outs) made[k] = 1
  reset()
}
FNR == 1 { pass++ }
pass == 1 && /^    output: / { n = split(substr($0, 13), o, /, /); for (i = 1; i <= n; i++) later[o[i]] = 1 }
pass == 1 { next }
/^(local)?rule [a-z0-9_]+:$/ { flush(); rule = $2; sub(/:$/, "", rule) }
/^    input: / { nin = split(substr($0, 12), inputs, /, /) }
/^    output: / { paths(substr($0, 13), 1) }
/^    log: / { paths(substr($0, 10), 0) }
/^Shell command: / { shell = substr($0, 16) }
END {
  flush()
  if (bad != "") { print "prepare-run: error: the dry run lists a job before its input:" bad > "/dev/stderr"; exit 2 }
  print "echo \"[prepared] all " jobs " jobs done in $(( $(date +%s) - start )) s\""
}' "$dry" "$dry" > "$out.body" || { rm -f "$out.body"; exit 2; }
jobs="$(grep -c '^job ' "$out.body")"
{
  cat <<EOF
#!/usr/bin/env bash
# The Hera pipeline as plain commands, written by workflow/scripts/prepare-run.sh from Snakemake's dry run
# (snakemake all -n -p --forceall $*) at commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown): $jobs jobs, scale $scale.
# Run in the repository's root with the environment's bin on PATH:  bash PATH/TO/$(basename "$out") [DEADLINE_S]
set -uo pipefail
[ -f Snakefile ] && [ -d hera ] || { echo "[prepared] run me in the repository's root (no Snakefile in \$PWD)" >&2; exit 2; }
command -v hera >/dev/null || { echo "[prepared] no 'hera' on PATH: run me through workflow/scripts/with-env.sh" >&2; exit 2; }
deadline="\${1:-}"
start=\$(date +%s)
times=results/$scale/prepared-run.tsv
mkdir -p results/$scale
[ -f "\$times" ] || printf 'job\trule\tseconds\trc\n' > "\$times"
job() {  # job N RULE "DIRS" <<< COMMAND
  local n="\$1" rule="\$2" dirs="\$3" cmd t0 rc
  cmd="\$(cat)"
  if [ -n "\$deadline" ] && [ \$(( \$(date +%s) - start )) -ge "\$deadline" ]; then
    echo "[prepared] deadline \${deadline} s reached: job \$n (\$rule) and later not started"; exit 3
  fi
  [ -z "\$dirs" ] || mkdir -p \$dirs
  echo "[prepared] \$(( \$(date +%s) - start )) s: job \$n/$jobs \$rule"
  t0=\$(date +%s)
  bash -c "set -euo pipefail; \$cmd"; rc=\$?
  printf '%s\t%s\t%s\t%s\n' "\$n" "\$rule" "\$(( \$(date +%s) - t0 ))" "\$rc" >> "\$times"
  if [ "\$rc" != 0 ]; then
    echo "[prepared] job \$n (\$rule) failed with rc \$rc: \$cmd" >&2
    log="\$(printf '%s' "\$cmd" | sed -n 's/.*> \([^ ]*\) 2>&1\$/\1/p')"
    [ -z "\$log" ] || [ ! -f "\$log" ] || tail -20 "\$log" >&2
    exit "\$rc"
  fi
}

EOF
  cat "$out.body"
} > "$out"
rm -f "$out.body"
chmod +x "$out"
echo "prepare-run: $out: $jobs jobs at scale $scale" >&2
