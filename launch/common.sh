# shellcheck shell=bash
# Shared helpers for launch/*.sh: flag parsing, dry-run printing, early checks. Source it, don't run it.
#
# A script declares its flags before calling `parse_flags "$@"`:
#   VALUE_FLAGS=(name zone)   # --name=X or --name X; sets $name
#   BOOL_FLAGS=(dry_run spot) # --spot, --spot=true|false, --nospot; sets $spot to 1 or 0
#   LIST_FLAGS=(env)          # repeatable; appends to the array ${env[@]}
# and a `usage` function. Words after `--` land in the array REST. Dashes in flag names may be written
# as underscores or hyphens (--dry_run, --dry-run).

set -euo pipefail

if ((BASH_VERSINFO[0] < 4)); then
  echo "error: launch scripts need bash 4 or newer (this is $BASH_VERSION; on macOS: brew install bash)" >&2
  exit 2
fi

LAUNCH_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck disable=SC2034  # read by the scripts that source this file
REPO_ROOT="$(dirname "$LAUNCH_DIR")"
REST=()
dry_run=0

die() {
  echo "error: $*" >&2
  exit 2
}

_member() {
  local needle=$1
  shift
  local item
  for item in "$@"; do [[ $item == "$needle" ]] && return 0; done
  return 1
}

parse_flags() {
  local arg key value has_value
  while (($#)); do
    arg=$1
    shift
    case $arg in
      -h | --help) usage; exit 0 ;;
      --) REST=("$@"); return 0 ;;
      --?*) ;;
      *) die "unexpected argument '$arg'; commands to run go after '--' (see --help)" ;;
    esac
    key=${arg#--}
    has_value=0
    value=
    if [[ $key == *=* ]]; then
      value=${key#*=}
      key=${key%%=*}
      has_value=1
    fi
    key=${key//-/_}
    if _member "$key" dry_run "${BOOL_FLAGS[@]}"; then
      if ((has_value)); then
        case $value in
          1 | true | yes) value=1 ;;
          0 | false | no) value=0 ;;
          *) die "--$key takes true or false, got '$value'" ;;
        esac
      else
        value=1
      fi
      printf -v "$key" '%s' "$value"
    elif [[ $key == no?* ]] && ((!has_value)) && _member "${key#no}" dry_run "${BOOL_FLAGS[@]}"; then
      printf -v "${key#no}" '%s' 0
    elif _member "$key" "${VALUE_FLAGS[@]}" "${LIST_FLAGS[@]}"; then
      if ((!has_value)); then
        (($#)) || die "--$key needs a value"
        value=$1
        shift
      fi
      if _member "$key" "${LIST_FLAGS[@]}"; then
        eval "$key+=(\"\$value\")"
      else
        printf -v "$key" '%s' "$value"
      fi
    else
      die "unknown flag '--$key' (see --help)"
    fi
  done
}

# require VAR "what it is" [ENV_NAME]: fail early when a required setting is empty.
require() {
  local var=$1 what=$2 env_name=${3:-}
  if [[ -z ${!var:-} ]]; then
    die "missing --$var ($what)${env_name:+; or set $env_name}. See --help."
  fi
}

require_gcloud() {
  ((dry_run)) && return 0
  command -v gcloud >/dev/null 2>&1 ||
    die "gcloud (the Google Cloud CLI) is not on PATH; install it" \
      "(https://cloud.google.com/sdk/docs/install) or pass --dry_run to only print the commands"
}

# shell_quote WORD: WORD as one shell word, quoted only when it has to be (--flag=VALUE quotes VALUE).
shell_quote() {
  if [[ $1 =~ ^[A-Za-z0-9_./:=,@%+-]+$ ]]; then
    printf '%s' "$1"
  elif [[ $1 =~ ^(--[A-Za-z0-9_-]+=)(.*)$ ]]; then
    printf "%s'%s'" "${BASH_REMATCH[1]}" "${BASH_REMATCH[2]//\'/\'\\\'\'}"
  else
    printf "'%s'" "${1//\'/\'\\\'\'}"
  fi
}

# quote_words WORD...: the words as one command line.
quote_words() {
  local out='' word
  for word in "$@"; do out+="${out:+ }$(shell_quote "$word")"; done
  printf '%s' "$out"
}

# run CMD...: print CMD (dry run, to stdout) or echo it to stderr and run it.
run() {
  if ((dry_run)); then
    quote_words "$@"
    echo
  else
    echo "+ $(quote_words "$@")" >&2
    "$@"
  fi
}

# The location flags every gcloud TPU command takes: --zone and, when set, --project.
scope_flags() {
  SCOPE=("--zone=${zone:?}")
  if [[ -n ${project:-} ]]; then SCOPE+=("--project=$project"); fi
}

check_tpu_name() {
  [[ $1 =~ ^[a-z]([-a-z0-9]*[a-z0-9])?$ ]] ||
    die "TPU name '$1' must be lowercase letters, digits and hyphens, starting with a letter"
}

# worker_list SPEC COUNT: "0" -> 0; "0,2" -> 0 2; "all" -> 0..COUNT-1.
worker_list() {
  local spec=$1 count=$2
  if [[ $spec == all ]]; then
    seq 0 $((count - 1)) | tr '\n' ' '
  elif [[ $spec =~ ^[0-9]+(,[0-9]+)*$ ]]; then
    printf '%s' "${spec//,/ }"
  else
    die "--worker must be 'all', a worker number or a comma-separated list, got '$spec'"
  fi
}

# count_workers: the number of workers (hosts) of TPU $name, from --num_workers or gcloud.
count_workers() {
  if [[ -n ${num_workers:-} ]]; then
    [[ $num_workers =~ ^[1-9][0-9]*$ ]] || die "--num_workers must be a positive integer"
    printf '%s' "$num_workers"
    return 0
  fi
  local cmd=(gcloud compute tpus tpu-vm describe "${name:?}" "${SCOPE[@]}"
    '--format=value(networkEndpoints[].ipAddress)')
  if ((dry_run)); then
    quote_words "${cmd[@]}" >&2
    echo >&2
    echo "(dry run: the worker count comes from the command above; pass --num_workers to print" \
      "every worker's command; showing worker 0)" >&2
    printf '1'
    return 0
  fi
  local endpoints
  endpoints=$("${cmd[@]}") || die "could not describe TPU '$name' to count its workers; pass --num_workers"
  [[ -n $endpoints ]] || die "TPU '$name' reports no workers; is it READY?"
  tr ';' '\n' <<<"$endpoints" | grep -c .
}

# copy_from_workers REMOTE_PATH LOCAL_DIR WORKER...: scp -r from each worker; into LOCAL_DIR/worker-I
# when there are several workers (gcloud copies from one worker at a time).
copy_from_workers() {
  local remote=$1 local_dir=$2
  shift 2
  local worker dest status=0
  for worker in "$@"; do
    dest=$local_dir
    (($# > 1)) && dest="$local_dir/worker-$worker"
    ((dry_run)) || mkdir -p "$dest"
    run gcloud compute tpus tpu-vm scp --recurse "$name:$remote" "$dest" "${SCOPE[@]}" \
      "--worker=$worker" || status=$?
  done
  return "$status"
}
