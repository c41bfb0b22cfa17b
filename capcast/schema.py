"""Column sets of capcast's interchange tables, defined once."""

# The long-format scores table: one value per (checkpoint, task, metric). A checkpoint is
# (family, run, model, tokens): ``run`` is the training run (one size, seed and schedule) its
# checkpoints share; ``model`` names the checkpoint (or, in published suites, the run itself, the
# checkpoints then told apart by ``tokens``). ``run`` is optional on input: a table without it
# reads as one run per model (see :func:`capcast.tables.scores.validate_scores`).
SCORES_COLUMNS = ("family", "run", "model", "params", "tokens", "flops", "step", "task", "metric", "value", "n_items", "chance")
SCORES_REQUIRED = ("family", "model", "params", "tokens", "task", "metric", "value")

# Metrics derived from per-choice records of multiple-choice tasks, and from samples.
MC_METRICS = ("acc", "acc_norm", "brier", "p_gold", "logprob_gold", "bpb_gold")
GENERATIVE_METRICS = ("pass_rate",)

# The per-instance samples table (PassUntil interchange).
SAMPLES_COLUMNS = ("family", "run", "model", "params", "tokens", "flops", "step", "task", "doc_id", "n_samples", "n_correct")

# The columns that identify one checkpoint in both tables.
CHECKPOINT_KEY = ("family", "run", "model", "tokens")


# Training compute when a spec or table gives none: C = 6 N D (Kaplan et al.).
FLOPS_PER_PARAM_TOKEN = 6.0


def default_flops(params, tokens):
    """6 * params * tokens, for numbers or arrays/columns alike."""
    return FLOPS_PER_PARAM_TOKEN * params * tokens


# The run a checkpoint belongs to when the spec or table does not say: its name without a
# trailing ``-step<N>`` / ``_step<N>`` (``l-s0-step2441`` -> ``l-s0``; ``pythia-1b`` -> itself).
RUN_SUFFIX_PATTERN = r"[-_]step\d+$"


def default_run(checkpoint: str) -> str:
    """The default run name of a checkpoint name (see :data:`RUN_SUFFIX_PATTERN`)."""
    import re

    return re.sub(RUN_SUFFIX_PATTERN, "", checkpoint) or checkpoint
