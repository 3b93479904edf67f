"""Engine set-up, read once per engine: capacities from a workload, a speculative mode's drafter and
trees resolved, the engine built (`build`: `sized_config`, `build_engine`, `engine_for`, also
exported by `apar_jax.engine`); config sections; tree planning from measured step cost."""
