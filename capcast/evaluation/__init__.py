"""Evaluation: the lm-eval harness (:mod:`.harness` and its ``capcast-hf`` backend :mod:`.backend`, the only modules that import ``lm_eval``), the
records it yields (:mod:`.records`), the family runner (:mod:`.runner`) and the scores SQL
(:mod:`.scores`)."""
