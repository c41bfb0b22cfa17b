"""Tables: the scores table and the samples table, their validation, the series cut from them,
and the readers that turn external results (Pythia, OpenLM, lm-eval JSON) into scores tables.

Data only: nothing here imports a law, the evaluation stack or lm-eval.
"""
