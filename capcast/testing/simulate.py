"""Synthetic families that look like real ones, for checking forecast intervals (coverage AND width).

What makes real families hard, and what this simulation keeps:

- **shared items**: every checkpoint is scored on the same benchmark items, each with its own
  difficulty, so checkpoints' errors are correlated, not independent binomial draws;
- **several checkpoints per run** (and optionally several seeds per size): a run's checkpoints
  share an item-by-run effect (a model that gets an item right tends to keep getting it right);
- **lack of fit**: each size deviates from the true curve by ``lack_of_fit_sd`` in logit, the
  target's size too (a new draw), so no law is exactly right;
- **scores near 0 and 1**: ``regime`` places the target near the top or the bottom of the range.

The law at the benchmark level is exact (``shape="law"``, the default): the expected score of a
checkpoint is ``floor + (1 - floor) * expit(z + u_size)`` with ``z = a + b * (log10 C - x0)``,
and each item's probability is ``floor + (1 - floor) * expit(s + v_ir - d_i)`` with the shift
``s`` solved so that the items average to exactly that score. With ``shape="items"`` the item
logits are ``z + u_size + v_ir - d_i`` themselves: the benchmark curve is then a mixture of item
sigmoids, which saturates more slowly than any single sigmoid (a lack of fit no residual at the
fitting sizes shows; only backtests reveal it). With ``shape="saturating"`` the benchmark curve is
``saturating-power``'s own form, ``q = exp(-A (C/C_top)^-alpha - c)`` (a ceiling ``exp(-c)`` below 1),
with the regime's level and slope at the largest fitting size; items as for ``"law"``. The observed score is the mean of Bernoulli draws
of the item probabilities; ``actual`` is the target's observed score, what a backtest compares a
forecast with.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import SimpleNamespace

import numpy as np
import pandas as pd
from scipy.special import expit

from capcast.schema import default_flops
from capcast.tables.series import Target

# (a, b): curve intercept at the largest fitting size and slope per decade of compute, per regime.
REGIMES = {
    "mid": (0.0, 1.2),   # fitting sizes climb from near chance to mid-range; the target well above
    "high": (1.6, 1.3),  # the target near saturation
    "low": (-3.2, 1.1),  # the target still close to the floor
    "flat": (-3.5, 0.0),  # no trend: every size (and the target) just above chance
}


# the benchmark curve's shapes: without a loss metric, and with one (a two-step family)
SHAPES = {False: ("law", "items", "saturating"), True: ("law", "items", "exponential")}


@dataclass(frozen=True)
class SimulatedFamily:
    scores: pd.DataFrame  # the long scores table of the fitting checkpoints and the target
    target: Target
    actual: float
    true_score: float  # the target's expected score (no item sampling noise)
    schedules: dict | None = None  # run -> learning-rate schedule (``simulate_family(schedules=True)``)


def simulate_family(
    rng: np.random.Generator, *, n_sizes: int = 5, seeds: int = 1, checkpoints_per_run: int = 3, n_items: int = 400,
    lack_of_fit_sd: float = 0.0, regime: str = "mid", chance: float = 0.25, item_sd: float = 1.0, item_run_sd: float = 0.4,
    target_decades: float = 0.8, family: str = "sim", task: str = "task", shape: str = "law",
    loss_metric: str | None = None, schedules: bool = False, run_lack_of_fit_sd: float = 0.0,
    tokens_per_param: tuple[float, ...] = (20.0,),
) -> SimulatedFamily:
    """One synthetic family: ``n_sizes`` sizes x ``seeds`` runs x ``checkpoints_per_run``
    checkpoints (at 1/4, 1/2 and all of each run's tokens for 3), and a target ``target_decades``
    of compute above the largest fitting checkpoint.

    ``loss_metric`` (e.g. ``"bpb_gold"``): the family is a two-step one. Each checkpoint also gets
    that task loss, ``L = 1.7 + 0.6 (N/1e9)^-0.3 + 0.5 (D/1e11)^-0.25`` (the Chinchilla form the
    two-step laws fit), and the score's logit is linear in the loss, ``z = a + b_L (L_top - L)``,
    with ``b_L`` giving the regime's slope per decade of compute at the largest fitting size: the
    ``ladder`` law is then the true law (lack of fit still enters through ``lack_of_fit_sd``). With
    ``shape="exponential"`` the normalised score is ``loss-error``'s form instead,
    ``q = q_top exp(gamma (L_top - L))`` (Gadre et al.: the error above chance falls exponentially
    in the loss), at the same level and slope (kept below 1).

    ``schedules`` (with ``loss_metric``): every run, the target's too, follows a cosine schedule
    (:data:`SIM_SCHEDULE`: 2,000 steps, 20 of warm-up, peak 1 to 0.1), checkpoints at steps 500,
    1,000 and 2,000 (the table's ``step``), and the loss is the learning-rate-annealing law
    ``ladder-schedule`` fits, ``L = 1.7 + 0.6 (N/1e9)^-0.3 + 0.5 (S1/1e11)^-0.25 - 0.3 S2/1e11``
    with each checkpoint's areas (:func:`capcast.laws.schedule.schedule_areas`): an intermediate
    checkpoint of a cosine run sits above the annealed curve, as in real families.
    ``SimulatedFamily.schedules`` gives the schedules by run, as a family spec does."""
    if shape not in SHAPES[loss_metric is not None]:
        raise ValueError(f"shape {shape!r} is not one of {SHAPES[loss_metric is not None]} "
                         f"({'with' if loss_metric else 'without'} a loss metric)")
    if schedules and loss_metric is None:
        raise ValueError("schedules=True shapes the losses: give a loss_metric")
    a, b = REGIMES[regime]
    params = np.logspace(7, 7 + 0.5 * (n_sizes - 1), n_sizes)
    fractions = np.array([0.25, 0.5, 1.0])[-checkpoints_per_run:] if checkpoints_per_run <= 3 else np.linspace(0.2, 1, checkpoints_per_run)
    top_flops = default_flops(params[-1], 20 * params[-1])
    x0 = np.log10(top_flops)
    target_params = params[-1] * 10 ** (target_decades / 2)
    target_tokens = 20 * target_params
    difficulty = rng.normal(0.0, item_sd, n_items)
    rows = []

    def loss_of(params_, tokens_):
        if schedules:
            s1, s2 = _areas(params_, tokens_)
            return 1.7 + 0.6 * (params_ / 1e9) ** -0.3 + 0.5 * (s1 / 1e11) ** -0.25 - ANNEAL_C * s2 / 1e11
        return 1.7 + 0.6 * (params_ / 1e9) ** -0.3 + 0.5 * (tokens_ / 1e11) ** -0.25

    top_loss = loss_of(params[-1], 20 * params[-1])
    # dL / dlog10 C along 20 tokens per parameter at the largest size, to match the regime's slope
    dx = 0.01
    loss_slope = (loss_of(params[-1] * 10 ** (dx / 2), 20 * params[-1] * 10 ** (dx / 2)) - top_loss) / dx
    b_loss = b / -loss_slope
    gamma_loss = b * (1 - expit(a)) / -loss_slope  # d log q / dL that gives dq/dx = b q (1 - q) at the top

    def score(params_, tokens_, size_effect, item_run):
        if shape == "saturating":
            z = _saturating_logit(a, b, np.log10(default_flops(params_, tokens_)) - x0) + size_effect
        elif loss_metric is None:
            z = a + b * (np.log10(default_flops(params_, tokens_)) - x0) + size_effect
        elif shape == "exponential":  # loss-error's form: q grows as exp(-gamma L), at the regime's level and slope
            q = np.clip(expit(a) * np.exp(gamma_loss * (top_loss - loss_of(params_, tokens_))), 1e-9, 1 - 1e-6)
            z = float(np.log(q / (1 - q))) + size_effect
        else:
            z = a + b_loss * (top_loss - loss_of(params_, tokens_)) + size_effect
        offsets = item_run - difficulty
        shift = z if shape == "items" else _shift_to_mean(expit(z), offsets)
        p = chance + (1 - chance) * expit(shift + offsets)
        return float(np.mean(p)), float(np.mean(rng.random(n_items) < p))

    for size_index, n in enumerate(params):
        size_effect = rng.normal(0.0, lack_of_fit_sd) if lack_of_fit_sd > 0 else 0.0
        for seed in range(seeds):
            item_run = rng.normal(0.0, item_run_sd, n_items)
            run_effect = size_effect + (rng.normal(0.0, run_lack_of_fit_sd) if run_lack_of_fit_sd > 0 else 0.0)
            run = f"s{size_index}-r{seed}"
            for step, fraction in enumerate(fractions):
                tokens = tokens_per_param[seed % len(tokens_per_param)] * n * fraction
                _, observed = score(n, tokens, run_effect, item_run)
                rows.append({"family": family, "run": run, "model": f"{run}-step{step}", "params": n, "tokens": tokens,
                             "step": _step_of(fraction) if schedules else step, "task": task, "metric": "acc", "value": observed, "n_items": n_items, "chance": chance})
                if loss_metric is not None:
                    rows.append({**rows[-1], "metric": loss_metric, "value": float(loss_of(n, tokens)), "n_items": np.nan,
                                 "chance": np.nan})
    size_effect = rng.normal(0.0, lack_of_fit_sd) if lack_of_fit_sd > 0 else 0.0
    if run_lack_of_fit_sd > 0:
        size_effect += rng.normal(0.0, run_lack_of_fit_sd)
    true_score, actual = score(target_params, target_tokens, size_effect, rng.normal(0.0, item_run_sd, n_items))
    rows.append({"family": family, "run": "target", "model": "target", "params": target_params, "tokens": target_tokens,
                 "step": SIM_SCHEDULE["total_steps"] if schedules else len(fractions) - 1, "task": task, "metric": "acc", "value": actual, "n_items": n_items, "chance": chance})
    frame = pd.DataFrame(rows)
    frame["flops"] = default_flops(frame["params"], frame["tokens"])
    target = Target(name="target", params=float(target_params), tokens=float(target_tokens))
    runs = {**{f"s{i}-r{seed}": n for i, n in enumerate(params) for seed in range(seeds)}, "target": target_params}
    return SimulatedFamily(scores=frame, target=target, actual=actual, true_score=true_score,
                           schedules={run: _schedule(n) for run, n in runs.items()} if schedules else None)


# Every simulated run's schedule shape (``simulate_family(schedules=True)``): tokens per step set so
# that the run's 20 tokens per parameter take ``total_steps`` (Tissue et al.'s lambda acts per step).
SIM_SCHEDULE = {"warmup_steps": 20, "peak_lr": 1.0, "final_lr": 0.1, "decay": "cosine", "decay_fraction": None,
                "total_steps": 2000}
ANNEAL_C = 0.3  # the annealing area's coefficient in the simulated loss (per 1e11 peak-LR tokens)


def _schedule(params_: float) -> SimpleNamespace:
    return SimpleNamespace(**SIM_SCHEDULE, tokens_per_step=20 * float(params_) / SIM_SCHEDULE["total_steps"])


def _step_of(fraction: float) -> int:
    return int(round(fraction * SIM_SCHEDULE["total_steps"]))


def _areas(params_: float, tokens_: float) -> tuple[float, float]:
    """(S1, S2) of the checkpoint at ``tokens_`` of a run of ``params_`` parameters on :data:`SIM_SCHEDULE`."""
    from capcast.laws.schedule import schedule_areas

    schedule = _schedule(params_)
    s1, s2 = schedule_areas(schedule, [round(float(tokens_) / schedule.tokens_per_step)])
    return float(s1[0]), float(s2[0])


def _saturating_logit(a: float, b: float, dx) -> float:
    """The logit of saturating-power's normalised score ``q = exp(-A 10^(-alpha dx) - c)`` at ``dx``
    decades from the largest fitting size, with the regime's level and slope there: q = expit(a) and
    dq/dx = b q (1 - q) at dx = 0 (a sigmoid's), the ceiling exp(-c) 80% of the way from q to 1."""
    q0 = float(expit(a))
    c = -np.log(q0 + 0.8 * (1 - q0))
    amplitude = -np.log(q0) - c
    alpha = b * q0 * (1 - q0) / (q0 * amplitude * np.log(10))
    q = np.exp(-amplitude * 10.0 ** (-alpha * np.asarray(dx, dtype=float)) - c)
    return float(np.log(q / (1 - q)))


def _shift_to_mean(mean: float, offsets: np.ndarray) -> float:
    """The shift s with mean(expit(s + offsets)) == mean (Newton's method; the map is monotone)."""
    from scipy.special import logit

    s = float(logit(np.clip(mean, 1e-9, 1 - 1e-9))) - float(np.mean(offsets))
    for _ in range(50):
        p = expit(s + offsets)
        gap = float(p.mean() - mean)
        if abs(gap) < 1e-10:
            break
        s -= gap / max(float(np.mean(p * (1 - p))), 1e-12)
    return s
