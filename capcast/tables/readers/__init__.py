"""Readers of external results: each turns files people already have into a capcast scores table.

Built-ins (registered through ``register_readers`` like a third-party reader): ``lm-eval-results``
(a folder of lm-eval ``results*.json``), ``pythia`` (the Pythia suite's evals) and ``openlm``
(Gadre et al.'s OpenLM runs).
"""

from capcast.tables.readers.base import Reader  # noqa: F401
