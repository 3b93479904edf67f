#!/usr/bin/env bash
# Delete a Cloud TPU slice (plain TPU VM, or a queued resource together with its TPU).
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

usage() {
  cat <<'EOF'
Usage: launch/tpu_delete.sh --name=NAME --zone=ZONE [options]

Deletes the TPU without asking for confirmation (gcloud --quiet).

Required:
  --name=NAME               TPU name. Env: APAR_TPU_NAME
  --zone=ZONE               Env: APAR_TPU_ZONE
Options:
  --project=PROJECT         Env: APAR_GCP_PROJECT
  --queued                  The TPU came from queued resources: delete the queued resource and its TPU
  --queued_resource_id=ID   Queued resource id (default: the TPU name)
  --dry_run                 Print the gcloud command instead of running it
  -h, --help                This help

Example:
  launch/tpu_delete.sh --name=apar-v5e32 --zone=us-west4-a --queued
EOF
}

VALUE_FLAGS=(name zone project queued_resource_id)
BOOL_FLAGS=(queued)
LIST_FLAGS=()
name=${APAR_TPU_NAME:-}
zone=${APAR_TPU_ZONE:-}
project=${APAR_GCP_PROJECT:-}
queued_resource_id=
queued=0
parse_flags "$@"
((${#REST[@]} == 0)) || die "tpu_delete.sh takes no command after --"

require name 'the TPU name' APAR_TPU_NAME
require zone 'the zone' APAR_TPU_ZONE
check_tpu_name "$name"
require_gcloud
scope_flags

if ((queued)); then
  # --force also deletes the TPU the queued resource created.
  run gcloud compute tpus queued-resources delete "${queued_resource_id:-$name}" "${SCOPE[@]}" --force --quiet
else
  run gcloud compute tpus tpu-vm delete "$name" "${SCOPE[@]}" --quiet
fi
