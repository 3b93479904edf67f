"""`token_rows_lr_scale` makes the new tokens' rows step that many times further; nothing else moves."""

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax

from apar_jax.defaults import train_defaults
from apar_jax.training.optimizer import make_optimizer


def _full_like(tree, value):
  return jax.tree.map(lambda x: jnp.full_like(x, value), tree)


def _updates(scale: float) -> dict:
  cfg = ml_collections.ConfigDict(train_defaults().to_dict())
  cfg.update(learning_rate=1e-2, warmup_steps=0, total_steps=10, grad_clip=1e9,
             token_rows_lr_scale=scale)
  params = {'lora': {'q': {'a': jnp.ones((4, 2)), 'b': jnp.ones((2, 4))}},
            'embed_rows': jnp.ones((2, 4)), 'head_cols': jnp.ones((4, 2))}
  grads = _full_like(params, 0.5)
  tx = make_optimizer(cfg)
  updates, _ = tx.update(grads, tx.init(params), params)
  return updates


def test_token_rows_scale_multiplies_only_the_rows_updates():
  base, scaled = _updates(1.0), _updates(10.0)
  for key in ('embed_rows', 'head_cols'):
    np.testing.assert_allclose(scaled[key], 10 * base[key], rtol=1e-6)
  for key in ('a', 'b'):
    np.testing.assert_allclose(scaled['lora']['q'][key], base['lora']['q'][key], rtol=1e-6)
  assert float(jnp.abs(base['embed_rows']).max()) > 0
  assert isinstance(make_optimizer(train_defaults()), optax.GradientTransformation)
