"""The reference mini-ladder: tiny causal LMs capcast trains itself on a synthetic skill corpus,
with tasks on which the family shows smooth, saturating, emergent and sampling-only behaviour.

- :mod:`capcast.reference.corpus`: the deterministic skill corpus;
- :mod:`capcast.reference.train` / :mod:`capcast.reference.ladder`: the training recipe, the
  manifest (weights sha256) and the family specs;
- :mod:`capcast.reference.items` / :mod:`capcast.reference.tasks`: the evaluation tasks;
- :mod:`capcast.reference.demo`: ``capcast demo``;
- :mod:`capcast.reference.summary`: the per-task, per-size table of docs/reference-family.md.
"""
