"""Evaluation: the lm-eval harness (:mod:`.harness`, the only module that imports ``lm_eval``), the
records it yields (:mod:`.records`), the family runner (:mod:`.runner`) and the scores SQL
(:mod:`.scores`)."""
