#!/usr/bin/env bash
# Run an apar_jax command on one machine with several GPUs, one mesh axis over all of them.
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

usage() {
  cat <<'EOF'
Usage: launch/gpu_single_host.sh [options] -- APAR_JAX_ARGS...

Counts the GPUs (CUDA_VISIBLE_DEVICES if set, else nvidia-smi), puts all of them on one mesh axis and
runs `python -m apar_jax APAR_JAX_ARGS --config.mesh.data=N --config.mesh.fsdp=1 --config.mesh.tensor=1`
(N on the axis chosen with --axis) in one process; jax drives every local GPU from it, so no
distributed set-up is needed. When APAR_JAX_ARGS already set --config.mesh.*, the mesh is left alone.
Install jax for CUDA first: .venv/bin/pip install 'jax[cuda12]==0.10.2'.

Required:
  -- ARGS...            What to run, e.g. -- bench --config=configs/smollm2_135m.py
Options:
  --num_gpus=N          GPUs to use (default: counted; required with --dry_run when there is no nvidia-smi)
  --axis=AXIS           data (default), fsdp or tensor: the mesh axis that spans the GPUs
  --python=EXE          Python with the project installed (default: .venv/bin/python of the repository)
  --log_file=FILE       Also write the output to FILE
  --dry_run             Print the command instead of running it
  -h, --help            This help

Example:
  launch/gpu_single_host.sh -- generate --config=configs/smollm2_135m.py --prompts_file=prompts.txt \
      --output=out.jsonl
EOF
}

VALUE_FLAGS=(num_gpus axis python log_file)
BOOL_FLAGS=()
LIST_FLAGS=()
num_gpus=
axis=data
python=
log_file=
parse_flags "$@"

((${#REST[@]} > 0)) ||
  die "nothing to run: put the command after --, e.g. -- bench --config=configs/smollm2_135m.py"
[[ $axis == data || $axis == fsdp || $axis == tensor ]] ||
  die "--axis must be data, fsdp or tensor, got '$axis'"
if [[ -z $python ]]; then
  python="$REPO_ROOT/.venv/bin/python"
  [[ -x $python ]] || python=python3
fi

if [[ -z $num_gpus ]]; then
  if [[ -n ${CUDA_VISIBLE_DEVICES:-} ]]; then
    num_gpus=$(tr ',' '\n' <<<"$CUDA_VISIBLE_DEVICES" | grep -c .)
  elif command -v nvidia-smi >/dev/null 2>&1; then
    num_gpus=$(nvidia-smi --list-gpus | grep -c '^GPU') || true
  else
    die "cannot count GPUs: nvidia-smi is not on PATH and CUDA_VISIBLE_DEVICES is unset; pass --num_gpus"
  fi
fi
[[ $num_gpus =~ ^[1-9][0-9]*$ ]] || die "need at least one GPU (--num_gpus or nvidia-smi gave '$num_gpus')"

args=("${REST[@]}")
if [[ " ${REST[*]} " != *" --config.mesh."* ]]; then
  declare -A size=([data]=1 [fsdp]=1 [tensor]=1)
  size[$axis]=$num_gpus
  args+=("--config.mesh.data=${size[data]}" "--config.mesh.fsdp=${size[fsdp]}"
    "--config.mesh.tensor=${size[tensor]}")
else
  echo "note: keeping the --config.mesh.* flags given" >&2
fi
cmd=("$python" -m apar_jax "${args[@]}")

if ((dry_run)); then
  run "${cmd[@]}"
elif [[ -n $log_file ]]; then
  mkdir -p "$(dirname "$log_file")"
  echo "+ $(quote_words "${cmd[@]}")" >&2
  "${cmd[@]}" 2>&1 | tee "$log_file"
else
  run "${cmd[@]}"
fi
