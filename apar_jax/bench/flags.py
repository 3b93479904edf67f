"""Flags of `python -m apar_jax bench` (imported by apar_jax/__main__.py before flags are parsed).

Shared flags come from apar_jax/cli_flags.py: --config, --prompts_file, --max_new_tokens (default
48 here), --output (the JSON report path), --out_dir (report directory), --seed (arrival times).
"""

from absl import flags

from apar_jax.bench.settings import DEFAULT_MODES, DEFAULT_SERVING_MODES

MODES = flags.DEFINE_list('modes', list(DEFAULT_MODES),
                          'bench: engine modes to compare (ar is always run: the baseline).')
REPEATS = flags.DEFINE_integer('repeats', 2, 'bench: timed repetitions, interleaved across modes.')
MAX_PROMPTS = flags.DEFINE_integer('max_prompts', None, 'bench: only the first N prompts.')
APAR_SLOTS = flags.DEFINE_integer('apar_slots', 8, 'bench: branch slots of APAR modes at batch 1.')
APAR_MODEL = flags.DEFINE_bool(
    'apar_model', True, 'bench: APAR modes decode the APAR fine-tune (config.weights.apar_adapter) '
    'and are compared with AR on it (row ar_apar_model); --noapar_model: the base model.')
PEERS = flags.DEFINE_bool('peers', True, 'bench: also run transformers generate and prompt lookup.')
PEER_THREADS = flags.DEFINE_integer('peer_threads', 1,
                                    'bench: torch threads of the peers (0 = torch default).')
SERVING = flags.DEFINE_bool('serving', True, 'bench: run the serving load.')
SERVING_MODES = flags.DEFINE_list('serving_modes', list(DEFAULT_SERVING_MODES),
                                  'bench: modes under the serving load.')
SERVING_REQUESTS = flags.DEFINE_integer('serving_requests', 16, 'bench: requests in the load.')
SERVING_RATE = flags.DEFINE_float('serving_rate', 2.0, 'bench: Poisson arrival rate (requests/s).')
SERVING_PAGE_BUDGET = flags.DEFINE_integer('serving_page_budget', 48,
                                           'bench: KV pages of the engine under load.')
SERVING_SLOTS = flags.DEFINE_integer('serving_slots', 16, 'bench: branch slots under load.')
SERVING_CHUNK_STEPS = flags.DEFINE_integer('serving_chunk_steps', 8,
                                           'bench: decode steps between admissions under load.')
SERVING_REPEATS = flags.DEFINE_integer('serving_repeats', 2,
                                       'bench: runs of the load per mode, interleaved.')
SERVING_URLS = flags.DEFINE_list(
    'serving_urls', [], 'bench: run only the serving load, over HTTP, against these running '
    'OpenAI-compatible servers (e.g. http://127.0.0.1:8000); see docs/serving.md.')
ROOFLINE = flags.DEFINE_bool('roofline', True, 'bench: measure memory bandwidth (roofline).')
TIMELINE = flags.DEFINE_bool('timeline', True, 'bench: record an APAR branch timeline.')
