#!/usr/bin/env bash
# Run a command inside the project's virtual environment, creating it first if it is absent.
#   bash workflow/scripts/with-env.sh snakemake --cores all
#   bash workflow/scripts/with-env.sh pytest
#   bash workflow/scripts/with-env.sh --wheelhouse DIR pytest     # offline: install from a folder of wheels
# Options (before the command):
#   --wheelhouse DIR   install with `pip --no-index --find-links DIR` (no package index needed); build DIR with
#                      workflow/scripts/make-wheelhouse.sh (for another Python: --python 3.12)
#   --python PY        the interpreter the venv is made from (default: $HERA_PYTHON, else python3); >= 3.11
#   --without A,B      leave these requirements out (e.g. snakemake, for a prepared script)
# HERA_VENV: venv location (default .venv in the repository root). A torch already installed in PY and listed
# in workflow/envs/torch-pairs.txt is used (HERA_TORCH=venv installs one into the venv instead); otherwise the
# CPU build of torch comes from pip's configured sources, then HERA_TORCH_INDEX (the PyTorch CPU index).
# A new venv is filled by uv where it works, else by pip (HERA_INSTALLER=pip: pip alone; hera_env.py's doc).
set -euo pipefail
die() { echo "with-env: error: $*" >&2; exit 2; }
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
venv="${HERA_VENV:-$root/.venv}"
py="${HERA_PYTHON:-python3}"
wheelhouse=""
without=""
while [ $# -gt 0 ]; do
  case "$1" in
    --wheelhouse) [ $# -ge 2 ] || die "--wheelhouse needs a directory"; wheelhouse="$2"; shift 2 ;;
    --python) [ $# -ge 2 ] || die "--python needs an interpreter"; py="$2"; shift 2 ;;
    --without) [ $# -ge 2 ] || die "--without needs a comma-separated list of packages"; without="$2"; shift 2 ;;
    --) shift; break ;;
    -*) die "unknown option $1 (options: --wheelhouse DIR, --python PY, --without A,B; then the command)" ;;
    *) break ;;
  esac
done
[ $# -gt 0 ] || die "no command given (e.g. bash workflow/scripts/with-env.sh pytest -q)"
[ -z "$wheelhouse" ] || [ -d "$wheelhouse" ] || die "wheelhouse $wheelhouse is not a directory (build it with workflow/scripts/make-wheelhouse.sh)"
stamp="$venv/.hera-env-ok"
reqs="$root/workflow/envs/requirements.txt"
if [ ! -f "$stamp" ] || [ "$reqs" -nt "$stamp" ] || [ "$root/pyproject.toml" -nt "$stamp" ] \
   || [ "$root/workflow/envs/torch-pairs.txt" -nt "$stamp" ]; then
  command -v "$py" >/dev/null 2>&1 || die "no Python interpreter '$py' found: install Python >= 3.11 with its venv module (e.g. sudo apt-get install python3.11 python3.11-venv) and pass --python python3.11"
  ver="$("$py" -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null || true)"
  case "$ver" in
    3.1[1-9]|3.[2-9][0-9]) ;;
    *) die "$py is Python ${ver:-(unknown)}; Hera needs Python >= 3.11: install one (e.g. sudo apt-get install python3.11 python3.11-venv) and pass --python python3.11" ;;
  esac
  "$py" -c 'import venv, ensurepip' >/dev/null 2>&1 || die "$py (Python $ver) cannot create virtual environments (its venv/ensurepip module is missing): install it, e.g. sudo apt-get install python$ver-venv, then rerun"
  echo "[with-env] setting up $venv with Python $ver${wheelhouse:+ from the wheelhouse $wheelhouse} (one-off)" >&2
  "$py" "$root/workflow/scripts/hera_env.py" setup --venv "$venv" ${wheelhouse:+--wheelhouse "$wheelhouse"} \
    ${without:+--without "$without"} || exit $?
  touch "$stamp"
fi
export PATH="$venv/bin:$PATH"
export VIRTUAL_ENV="$venv"
cd "$root"
exec "$@"
