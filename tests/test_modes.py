"""Mode names parsed once (`apar_jax.modes`): every name round-trips, unknown names are refused."""

import pytest

from apar_jax.modes import DRAFTERS, MODES, SPEC_MODES, Mode, is_apar_mode, split_mode


def test_every_mode_round_trips():
  assert len(set(MODES)) == len(MODES) == 2 + 2 * len(DRAFTERS)
  for name in MODES:
    mode = Mode.parse(name)
    assert mode.name == name
    assert split_mode(name) == (mode.apar, mode.drafter)
    assert is_apar_mode(name) == mode.apar == name.startswith('apar')
    assert (mode.drafter is not None) == (name in SPEC_MODES)
    assert mode.base == ('apar' if mode.apar else 'ar')
  assert Mode.parse('apar_medusa') == Mode(True, 'medusa')
  assert Mode.parse('lookup') == Mode(False, 'lookup')


@pytest.mark.parametrize('name', ['', 'AR', 'apar_', 'apar_ar', 'medusa_apar', 'eagle'])
def test_unknown_names_are_refused(name):
  with pytest.raises(ValueError, match='choose one of ar, apar, lookup'):
    Mode.parse(name)
  assert not is_apar_mode(name)
