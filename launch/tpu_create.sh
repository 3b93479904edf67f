#!/usr/bin/env bash
# Create a Cloud TPU slice: a plain TPU VM, or a queued resource (waits in Google's queue for capacity).
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

usage() {
  cat <<'EOF'
Usage: launch/tpu_create.sh --name=NAME --zone=ZONE --accelerator_type=TYPE [options]

Creates a Cloud TPU slice with gcloud.

Required:
  --name=NAME               TPU name (lowercase, digits, hyphens). Env: APAR_TPU_NAME
  --zone=ZONE               e.g. us-west4-a. Env: APAR_TPU_ZONE
  --accelerator_type=TYPE   e.g. v5litepod-8 (v5e, one host) or v5litepod-32 (v5e, several hosts)
Options:
  --runtime_version=V       TPU software version; default by family: v5litepod-* -> v2-alpha-tpuv5-lite,
                            v6e-* -> v2-alpha-tpuv6e, v5p-* -> v2-alpha-tpuv5, v4-* -> tpu-ubuntu2204-base
  --project=PROJECT         GCP project (default: gcloud's configured project). Env: APAR_GCP_PROJECT
  --spot                    Spot (preemptible, cheaper) capacity
  --queued                  Create through queued resources instead of a plain TPU VM create
  --queued_resource_id=ID   Queued resource id (default: the TPU name)
  --wait                    With --queued: poll until the queued resource is ACTIVE
  --wait_timeout_s=S        Give up waiting after S seconds (default 3600)
  --dry_run                 Print the gcloud commands instead of running them
  -h, --help                This help

Examples:
  launch/tpu_create.sh --name=apar-v5e8 --zone=us-west4-a --accelerator_type=v5litepod-8 --spot
  launch/tpu_create.sh --name=apar-v5e32 --zone=us-west4-a --accelerator_type=v5litepod-32 \
      --queued --spot --wait
EOF
}

VALUE_FLAGS=(name zone project accelerator_type runtime_version queued_resource_id wait_timeout_s)
BOOL_FLAGS=(spot queued wait)
LIST_FLAGS=()
name=${APAR_TPU_NAME:-}
zone=${APAR_TPU_ZONE:-}
project=${APAR_GCP_PROJECT:-}
accelerator_type=
runtime_version=
queued_resource_id=
wait_timeout_s=3600
spot=0
queued=0
wait=0
parse_flags "$@"
((${#REST[@]} == 0)) || die "tpu_create.sh takes no command after --"

require name 'the TPU name' APAR_TPU_NAME
require zone 'the zone, e.g. us-west4-a' APAR_TPU_ZONE
require accelerator_type 'e.g. v5litepod-8'
check_tpu_name "$name"
if [[ $accelerator_type == v5e-* ]]; then
  die "gcloud spells v5e accelerator types v5litepod-N:" \
    "use --accelerator_type=v5litepod-${accelerator_type#v5e-}"
fi
if [[ -z $runtime_version ]]; then
  case $accelerator_type in
    v5litepod-*) runtime_version=v2-alpha-tpuv5-lite ;;
    v6e-*) runtime_version=v2-alpha-tpuv6e ;;
    v5p-*) runtime_version=v2-alpha-tpuv5 ;;
    v4-*) runtime_version=tpu-ubuntu2204-base ;;
    *) die "no default runtime version for accelerator type '$accelerator_type'; pass --runtime_version" ;;
  esac
fi
((!wait || queued)) || die "--wait applies to --queued (a plain create already waits until the TPU is ready)"
[[ $wait_timeout_s =~ ^[0-9]+$ ]] || die "--wait_timeout_s must be a number of seconds"
queued_resource_id=${queued_resource_id:-$name}
require_gcloud
scope_flags

spot_flag=()
((spot)) && spot_flag=(--spot)
if ((queued)); then
  run gcloud compute tpus queued-resources create "$queued_resource_id" "--node-id=$name" "${SCOPE[@]}" \
    "--accelerator-type=$accelerator_type" "--runtime-version=$runtime_version" "${spot_flag[@]}"
else
  run gcloud compute tpus tpu-vm create "$name" "${SCOPE[@]}" \
    "--accelerator-type=$accelerator_type" "--version=$runtime_version" "${spot_flag[@]}"
fi

if ((wait)); then
  describe=(gcloud compute tpus queued-resources describe "$queued_resource_id" "${SCOPE[@]}"
    '--format=value(state.state)')
  if ((dry_run)); then
    run "${describe[@]}"
    exit 0
  fi
  deadline=$((SECONDS + wait_timeout_s))
  while :; do
    state=$("${describe[@]}")
    echo "queued resource $queued_resource_id: $state" >&2
    case $state in
      ACTIVE) break ;;
      FAILED | SUSPENDED | SUSPENDING) die "queued resource $queued_resource_id is $state" ;;
    esac
    ((SECONDS < deadline)) || die "queued resource $queued_resource_id not ACTIVE after" \
      "${wait_timeout_s}s (still $state); delete it with launch/tpu_delete.sh --queued"
    sleep 30
  done
fi
