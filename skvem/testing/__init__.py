"""Builders for tests, benchmarks and examples: tiny random models and fake data sets.

Everything here is made locally from random weights or synthetic data and
saved through the same public loading paths a user's real checkpoint or data
set takes, so nothing is ever downloaded:

* :mod:`skvem.testing.backbones` - tiny image backbones for every family;
* :mod:`skvem.testing.language_models` - tiny captioners, open_clip and
  sentence-transformers folders;
* :mod:`skvem.testing.datasets` - fake Algonauts 2023 and NSD folders in the
  exact layouts.
"""
