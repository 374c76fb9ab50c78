#!/usr/bin/env bash
# Download every wheel Hera needs into DIR, for an install with no package index (with-env.sh --wheelhouse DIR).
#   bash workflow/scripts/make-wheelhouse.sh DIR                                # this Python, torch CPU build
#   bash workflow/scripts/make-wheelhouse.sh --python 3.12 DIR                  # for CPython 3.12, Linux x86-64
#   bash workflow/scripts/make-wheelhouse.sh --python 3.12 --preinstalled-torch 2.11 --without snakemake DIR
# --preinstalled-torch: the target already has that torch; the wheelhouse carries the fbgemm-gpu-cpu and
# torchrec built for it (workflow/envs/torch-pairs.txt) and no torch; --present A,B leaves out the wheels of
# packages the target already has. Needs pip and a package index here.
# HERA_PYTHON: the interpreter whose pip downloads (default python3); HERA_TORCH_INDEX: where torch's CPU build
# comes from when pip's configured sources lack it (default https://download.pytorch.org/whl/cpu).
set -euo pipefail
exec "${HERA_PYTHON:-python3}" "$(dirname "${BASH_SOURCE[0]}")/hera_env.py" wheelhouse "$@"
