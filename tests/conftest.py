"""Shared fixtures: configs loaded by path, a tiny random model."""

import importlib.util
import os
import sys

import pytest

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# Step costs the engine measures for tree='auto' go to one folder per test run (shared by the CLI
# subprocesses), never to the user's ~/.cache.
if 'APAR_JAX_CACHE_DIR' not in os.environ:
  import tempfile
  os.environ['APAR_JAX_CACHE_DIR'] = tempfile.mkdtemp(prefix='apar_jax_test_cache_')


def load_config(name: str):
  """Loads configs/<name>.py and returns get_config()."""
  path = os.path.join(REPO_ROOT, 'configs', f'{name}.py')
  spec = importlib.util.spec_from_file_location(f'_config_{name}', path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module.get_config()


@pytest.fixture(name='load_config', scope='session')
def load_config_fixture():
  return load_config


@pytest.fixture
def tiny_config():
  return load_config('tiny')
