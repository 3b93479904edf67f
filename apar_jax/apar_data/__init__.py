"""APAR training data: structure extraction from chat answers, trees, training rows, prompts.

    tree = extract_tree(answer).tree          # None when the answer has no forkable structure
    reassemble(tree) == answer                 # always
    rows, stats = build_rows(sharegpt_path, tokenizer, ...)   # packed rows for the trainer
"""

from apar_jax.apar_data.answer_tree import AnswerTree, reassemble
from apar_jax.apar_data.dataset import DataStats, batch_rows, build_rows
from apar_jax.apar_data.examples import Branch, Example, plain_example, tokenize_exchange, tree_example
from apar_jax.apar_data.layouts import branch_layout, token_counts
from apar_jax.apar_data.packing import PackedRows, pack_rows
from apar_jax.apar_data.prompt_generator import Prompt, generate_prompts
from apar_jax.apar_data.sharegpt import Exchange, exchanges, read_conversations, sharegpt_record
from apar_jax.apar_data.structure import Extraction, extract_tree

__all__ = ['AnswerTree', 'reassemble', 'DataStats', 'batch_rows', 'build_rows', 'Branch', 'Example',
           'plain_example', 'tokenize_exchange', 'tree_example', 'branch_layout', 'token_counts',
           'PackedRows', 'pack_rows', 'Prompt', 'generate_prompts', 'Exchange', 'exchanges',
           'read_conversations', 'sharegpt_record', 'Extraction', 'extract_tree']
