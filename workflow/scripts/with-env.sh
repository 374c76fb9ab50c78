#!/usr/bin/env bash
# Run a command inside the project's virtual environment, creating it first if it is absent.
#   bash workflow/scripts/with-env.sh snakemake --cores all
#   bash workflow/scripts/with-env.sh pytest
# HERA_VENV overrides the location (default: .venv in the repository root).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
venv="${HERA_VENV:-$root/.venv}"
stamp="$venv/.hera-env-ok"
reqs="$root/workflow/envs/requirements.txt"
if [ ! -f "$stamp" ] || [ "$reqs" -nt "$stamp" ] || [ "$root/pyproject.toml" -nt "$stamp" ]; then
  echo "[with-env] setting up $venv (one-off, ~1-2 min)" >&2
  python3 -m venv "$venv"
  "$venv/bin/python" -m pip install -q --upgrade pip
  "$venv/bin/python" -m pip install -q -r "$reqs"
  "$venv/bin/python" -m pip install -q --no-deps -r "$root/workflow/envs/requirements-nodeps.txt"
  "$venv/bin/python" -m pip install -q --no-deps -e "$root"
  "$venv/bin/python" -c "import torch, torchrec, fbgemm_gpu; print('[with-env] torch', torch.__version__, 'torchrec', torchrec.__version__)" >&2
  touch "$stamp"
fi
export PATH="$venv/bin:$PATH"
export VIRTUAL_ENV="$venv"
cd "$root"
exec "$@"
