"""Column sets of capcast's interchange tables, defined once."""

# The long-format scores table: one value per (model checkpoint, task, metric).
SCORES_COLUMNS = ("family", "model", "params", "tokens", "flops", "step", "task", "metric", "value", "n_items", "chance")
SCORES_REQUIRED = ("family", "model", "params", "tokens", "task", "metric", "value")

# Metrics derived from per-choice records of multiple-choice tasks, and from samples.
MC_METRICS = ("acc", "acc_norm", "brier", "p_gold", "logprob_gold", "bpb_gold")
GENERATIVE_METRICS = ("pass_rate",)

# The per-instance samples table (PassUntil interchange).
SAMPLES_COLUMNS = ("family", "model", "params", "tokens", "flops", "step", "task", "doc_id", "n_samples", "n_correct")


# Training compute when a spec or table gives none: C = 6 N D (Kaplan et al.).
FLOPS_PER_PARAM_TOKEN = 6.0


def default_flops(params, tokens):
    """6 * params * tokens, for numbers or arrays/columns alike."""
    return FLOPS_PER_PARAM_TOKEN * params * tokens
