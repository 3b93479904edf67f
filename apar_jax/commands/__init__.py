"""One module per `python -m apar_jax` command (`run(config)`); nothing imports them but `__main__`."""
