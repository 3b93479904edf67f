#!/usr/bin/env bash
# Run one command on all workers of a TPU slice at once and collect each worker's log locally.
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

usage() {
  cat <<'EOF'
Usage: launch/tpu_run.sh --name=NAME --zone=ZONE [options] -- APAR_JAX_ARGS...

Runs `python -m apar_jax APAR_JAX_ARGS` in WORKDIR (set up by tpu_setup.sh) on every worker at once
(gcloud ... ssh --worker=all). Every worker must run the same command: jax starts its distributed
runtime itself on Cloud TPU VMs (no coordinator flags needed) and forms one mesh over all hosts.
gcloud writes each worker's output to LOG_DIR/RUN_ID/<worker>.log (0.log, 1.log, ...) as it runs;
each worker also keeps its own copy in WORKDIR/launch_logs/RUN_ID/<hostname>.log. Running on several
workers needs your gcloud SSH key in ssh-agent: ssh-add ~/.ssh/google_compute_engine.

Required:
  --name=NAME           TPU name. Env: APAR_TPU_NAME
  --zone=ZONE           Env: APAR_TPU_ZONE
  -- ARGS...            What to run, e.g. -- generate --config=configs/smollm2_135m.py --prompt=Hi
Options:
  --project=PROJECT     Env: APAR_GCP_PROJECT
  --workdir=DIR         Checkout on the workers, relative to home (default: apar-jax)
  --run_id=ID           Name of this run's log directory (default: UTC time, e.g. 20250101T120000Z)
  --log_dir=DIR         Local directory for collected logs (default: launch_logs/NAME)
  --env=KEY=VALUE       Set an environment variable on the workers (repeatable), e.g. --env=XLA_FLAGS=...
  --raw                 ARGS are a shell command (run in WORKDIR with the venv active), not apar_jax args
  --background          Start the command with nohup and return at once; fetch logs later with
                        tpu_copy_results.sh --remote_path=WORKDIR/launch_logs/RUN_ID
  --worker=SPEC         all (default), a worker number, or a comma-separated list
  --dry_run             Print the gcloud commands instead of running them
  -h, --help            This help

Examples:
  launch/tpu_run.sh --name=apar-v5e8 --zone=us-west4-a -- bench --config=configs/smollm2_135m.py \
      --config.mesh.data=8
  launch/tpu_run.sh --name=apar-v5e32 --zone=us-west4-a -- train --config=configs/smollm2_135m.py \
      --config.mesh.data=-1 --config.mesh.fsdp=4
EOF
}

VALUE_FLAGS=(name zone project workdir run_id log_dir worker)
BOOL_FLAGS=(raw background)
LIST_FLAGS=(env)
name=${APAR_TPU_NAME:-}
zone=${APAR_TPU_ZONE:-}
project=${APAR_GCP_PROJECT:-}
workdir=apar-jax
run_id=
log_dir=
worker=all
env=()
raw=0
background=0
parse_flags "$@"

require name 'the TPU name' APAR_TPU_NAME
require zone 'the zone' APAR_TPU_ZONE
check_tpu_name "$name"
((${#REST[@]} > 0)) ||
  die "nothing to run: put the command after --," \
    "e.g. -- generate --config=configs/smollm2_135m.py --prompt=Hi"
[[ $workdir != /* && $workdir != *..* && -n $workdir ]] ||
  die "--workdir must be a path under the home directory, got '$workdir'"
[[ $worker == all || $worker =~ ^[0-9]+(,[0-9]+)*$ ]] || die "--worker must be all, N or N,M,..."
run_id=${run_id:-$(date -u +%Y%m%dT%H%M%SZ)}
[[ $run_id =~ ^[A-Za-z0-9_.-]+$ ]] || die "--run_id may only use letters, digits, '_', '.', '-'"
log_dir=${log_dir:-launch_logs/$name}
for kv in ${env[@]+"${env[@]}"}; do
  [[ $kv =~ ^[A-Za-z_][A-Za-z0-9_]*= ]] || die "--env takes KEY=VALUE, got '$kv'"
done
require_gcloud
scope_flags

remote_logs="launch_logs/$run_id"
if ((raw)); then
  command_line="source .venv/bin/activate && ${REST[*]}"
else
  command_line=".venv/bin/python -m apar_jax $(quote_words "${REST[@]}")"
fi
script="set -euo pipefail
cd $(shell_quote "$workdir")
mkdir -p $remote_logs
log=$remote_logs/\$(hostname).log"
for kv in ${env[@]+"${env[@]}"}; do
  script+="
export ${kv%%=*}=$(shell_quote "${kv#*=}")"
done
if ((background)); then
  script+="
nohup bash -c $(shell_quote "$command_line") > \"\$log\" 2>&1 < /dev/null &
echo \"\$(hostname): started pid \$!, log ~/$workdir/\$log\""
else
  script+="
{ $command_line ; } 2>&1 | tee \"\$log\""
fi

local_run_dir="$log_dir/$run_id"
ssh_cmd=(gcloud compute tpus tpu-vm ssh "$name" "${SCOPE[@]}" "--worker=$worker" "--command=$script")
if ((!background)); then
  ssh_cmd+=("--output-directory=$local_run_dir")
  ((dry_run)) || {
    mkdir -p "$local_run_dir"
    echo "worker logs: $local_run_dir/<worker>.log (e.g. tail -f $local_run_dir/0.log)" >&2
  }
fi
run "${ssh_cmd[@]}"
