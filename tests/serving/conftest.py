"""Servers for the serving tests, each started once on a free local port: AR on configs/tiny.py
(random weights, the SmolLM2 tokenizer: what `generate --config=configs/tiny.py` decodes) and APAR
on the same model with a head that forks (`serving_testlib.forky_runtime`)."""

import pytest

from serving_testlib import forky_runtime, start, tiny_config


@pytest.fixture(scope='session')
def ar_server():
  server = start(tiny_config(), 'ar')
  yield server
  server.stop()


@pytest.fixture(scope='session')
def apar_runtime():
  return forky_runtime()


@pytest.fixture(scope='session')
def apar_server(apar_runtime):
  server = start(apar_runtime.config, 'apar', runtime=apar_runtime)
  yield server
  server.stop()
