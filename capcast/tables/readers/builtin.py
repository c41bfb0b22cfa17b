"""The built-in readers, registered by :mod:`capcast.plugins.builtin.readers` through the same
``register_readers`` hook a third-party plugin uses."""

from capcast.tables.readers import lm_eval_results, openlm, pythia

READERS = (lm_eval_results.READER, pythia.READER, openlm.READER)
