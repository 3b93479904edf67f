"""The APAR control tokens and the token names that end a turn."""

FORK_TOKEN = '[Fork]'
"""Emitted by a branch to fork a child; a training target (the authors' `[SplitMask]`)."""

CHILD_TOKEN = '[Child]'
"""Forced as the first token of every new branch; never a target (the authors' `[SplitSop]`)."""

APAR_TOKENS: tuple[str, str] = (FORK_TOKEN, CHILD_TOKEN)
"""Appended in this order, so `[Fork]` gets the smaller id."""

END_OF_TURN_TOKENS: tuple[str, ...] = (
    '<|im_end|>',       # ChatML (SmolLM2, Qwen)
    '<|endoftext|>',    # GPT-2 style end of document
    '<|eot_id|>',       # Llama 3
    '<|eom_id|>',
    '<|end_of_text|>',
    '<|end|>',          # Phi-3
    '<end_of_turn>',    # Gemma
    '</s>',             # LLaMA / Vicuna
)
"""Tokens that end a branch when a vocabulary has them (besides its EOS)."""
