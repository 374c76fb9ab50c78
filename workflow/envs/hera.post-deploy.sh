#!/usr/bin/env bash
# Run by Snakemake after it creates the rules' conda environment: torchrec must come without its
# dependencies (its metadata requires the CUDA build fbgemm-gpu, which must never sit beside
# fbgemm-gpu-cpu), and the hera package itself is installed from this checkout.
set -euo pipefail
pip install --no-deps torchrec==1.8.0
pip install --no-deps -e "$(dirname "$0")/../.."
