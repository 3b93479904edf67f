#!/usr/bin/env bash
# Copy results (files or directories) from TPU workers back to this machine.
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

usage() {
  cat <<'EOF'
Usage: launch/tpu_copy_results.sh --name=NAME --zone=ZONE [options]

Copies REMOTE_PATH (relative to the workers' home directory) into LOCAL_DIR with gcloud scp --recurse.
Results, JSONL outputs and checkpoint metadata are written by process 0 (worker 0), the default.
gcloud copies from one worker at a time, so --worker=all runs one copy per worker, each into
LOCAL_DIR/worker-I/.

Required:
  --name=NAME             TPU name. Env: APAR_TPU_NAME
  --zone=ZONE             Env: APAR_TPU_ZONE
Options:
  --project=PROJECT       Env: APAR_GCP_PROJECT
  --remote_path=PATH      What to copy (default: apar-jax/results); globs allow e.g. 'apar-jax/out/*.jsonl'
  --local_dir=DIR         Where to put it (default: results/NAME)
  --worker=SPEC           0 (default), a comma-separated list, or all
  --num_workers=N         Number of workers for --worker=all (default: asked from gcloud)
  --dry_run               Print the gcloud commands instead of running them
  -h, --help              This help

Example:
  launch/tpu_copy_results.sh --name=apar-v5e8 --zone=us-west4-a --remote_path=apar-jax/out.jsonl
EOF
}

VALUE_FLAGS=(name zone project remote_path local_dir worker num_workers)
BOOL_FLAGS=()
LIST_FLAGS=()
name=${APAR_TPU_NAME:-}
zone=${APAR_TPU_ZONE:-}
project=${APAR_GCP_PROJECT:-}
remote_path=apar-jax/results
local_dir=
worker=0
num_workers=
parse_flags "$@"
((${#REST[@]} == 0)) || die "tpu_copy_results.sh takes no command after --"

require name 'the TPU name' APAR_TPU_NAME
require zone 'the zone' APAR_TPU_ZONE
require remote_path 'the path on the workers'
check_tpu_name "$name"
local_dir=${local_dir:-results/$name}
require_gcloud
scope_flags

count=0
[[ $worker == all ]] && count=$(count_workers)
workers=$(worker_list "$worker" "$count")
# shellcheck disable=SC2086  # one word per worker
copy_from_workers "$remote_path" "$local_dir" $workers
((dry_run)) || echo "copied to $local_dir" >&2
