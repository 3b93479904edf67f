"""Command-line flags shared by every command of `python -m apar_jax`."""

import os

from absl import flags
from ml_collections import config_flags

from apar_jax.defaults import default_config

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_CONFIG = default_config.__file__  # SmolLM2-135M (`apar_jax.defaults.presets`)

CONFIG = config_flags.DEFINE_config_file(
    'config', DEFAULT_CONFIG, 'Config file (ml_collections, get_config()); fields can be '
    'overridden, e.g. --config.generate.max_cache_len=4096.', lock_config=False)

# generate
PROMPT = flags.DEFINE_string('prompt', None, 'One user prompt.')
PROMPTS_FILE = flags.DEFINE_string(
    'prompts_file', None, 'Prompts: .txt (one per line) or .jsonl (a "prompt" field per line).')
MODE = flags.DEFINE_string('mode', 'ar', 'Decoding mode: ar, apar, medusa, hidden_transfer, lookup, '
                           'apar_<drafter>.')
MAX_NEW_TOKENS = flags.DEFINE_integer('max_new_tokens', None,
                                      'Token budget per answer (default: config.generate).')
TEMPERATURE = flags.DEFINE_float('temperature', None, '0 = greedy (default: config.generate).')
TOP_P = flags.DEFINE_float('top_p', None, 'Nucleus sampling mass (1.0 = off).')
TOP_K = flags.DEFINE_integer('top_k', None, 'Top-k sampling (0 = off).')
SEED = flags.DEFINE_integer('seed', None, 'PRNG seed for sampling (default: config.seed).')
REPETITION_PENALTY = flags.DEFINE_float(
    'repetition_penalty', None, 'Divides the logits of tokens a branch already wrote (1.0 = off; '
    'ar / apar modes; default: config.generate).')
NO_REPEAT_NGRAM = flags.DEFINE_integer(
    'no_repeat_ngram', None, 'Bans a token that would repeat a token n-gram of the branch (0 = off; '
    'ar / apar modes; default: config.generate).')
PENALIZE_SYMBOLS = flags.DEFINE_boolean(
    'penalize_symbols', None, 'Whether --repetition_penalty also falls on tokens without a letter '
    '(digits, punctuation, `**`, newlines); --nopenalize_symbols keeps a list\'s marks cheap '
    '(default: config.generate).')
OUTPUT = flags.DEFINE_string('output', None, 'Write one JSON record per prompt to this .jsonl file '
                             '(its directory must exist; an existing file needs --overwrite).')
OVERWRITE = flags.DEFINE_bool('overwrite', False, 'Replace an existing --output file.')
RAW_PROMPT = flags.DEFINE_bool('raw_prompt', False,
                               'Feed the prompt as is, without the chat template.')
STREAM = flags.DEFINE_bool('stream', True, 'Print the answer as it is generated (single prompt).')
ATTENTION_IMPL = flags.DEFINE_string(
    'attention_impl', None, 'auto | reference | pallas | pallas_interpret (default: config).')

# convert
SOURCE_KIND = flags.DEFINE_enum('source_kind', None, ['hf', 'gguf', 'default'],
                                'convert: the kind of checkpoint to read (default = the SmolLM2 GGUF).')
SOURCE = flags.DEFINE_string('source', None, 'convert: HF checkpoint directory or .gguf file.')
OUT_DIR = flags.DEFINE_string('out_dir', None, 'convert: orbax checkpoint directory to write.')

# serve
HOST = flags.DEFINE_string('host', '127.0.0.1', 'serve: address to listen on (0.0.0.0 = every '
                           'interface).')
PORT = flags.DEFINE_integer('port', 8000, 'serve: TCP port.')
MAX_WAITING = flags.DEFINE_integer('max_waiting', 64, 'serve: requests that may wait for '
                                   'admission; beyond, 503 with Retry-After.')

# multi-host (see apar_jax/distributed.py); not needed on Cloud TPU VMs, where jax finds the workers itself
COORDINATOR_ADDRESS = flags.DEFINE_string(
    'coordinator_address', None, 'host:port of process 0 for a multi-process run '
    '(default: APAR_COORDINATOR_ADDRESS).')
NUM_PROCESSES = flags.DEFINE_integer(
    'num_processes', None, 'Processes in the job; 1 = single process (default: APAR_NUM_PROCESSES).')
PROCESS_ID = flags.DEFINE_integer(
    'process_id', None, "This process's id, 0..num_processes-1 (default: APAR_PROCESS_ID).")
