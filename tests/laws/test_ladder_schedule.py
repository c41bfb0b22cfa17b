"""The learning-rate areas (capcast.laws.schedule) and the schedule-aware two-step law ``ladder-schedule``."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from scipy.special import expit

from capcast.laws.base import NotPredictable, Series, Target
from capcast.laws.ladder_schedule import LadderScheduleLaw, annealing_loss
from capcast.laws.schedule import ANNEAL_AREA, LR_AREA, attach_areas, final_areas, learning_rates, schedule_areas, stretched

TOKENS_PER_STEP = 2e5
SIZES = np.geomspace(2e7, 1e9, 5)
FRACTIONS = (0.2, 0.35, 0.5, 0.65, 0.8, 0.9, 1.0)  # checkpoints along each run
N_ITEMS, CHANCE = 3000, 0.25
# true step-1 law: E, log A, alpha, log B, beta, C with N0 = 1e9, S0 = 1e10 tokens (annealing a
# run to 10% of its peak lowers its loss by about 0.07)
THETA = np.array([1.6, np.log(0.5), 0.3, np.log(0.25), 0.3, 4.0])


def schedule(decay="cosine", total=1000, warmup=10, peak=3e-3, final=3e-4, fraction=None, per_step=TOKENS_PER_STEP):
    return SimpleNamespace(warmup_steps=warmup, peak_lr=peak, final_lr=final, decay=decay, decay_fraction=fraction,
                           total_steps=total, tokens_per_step=per_step)


def run_schedule(tokens: float):
    return schedule(total=int(round(tokens / TOKENS_PER_STEP)), warmup=int(round(tokens / TOKENS_PER_STEP)) // 100, peak=1.0, final=0.1)


def true_loss(params, s1, s2):
    return annealing_loss(THETA, params, s1, s2, 1e9, 1e10)


def true_score(loss):
    return CHANCE + (1 - CHANCE) * expit(-4.0 * (loss - 2.5))


def annealing_family(rng) -> tuple[Series, dict]:
    """One cosine run per size (20 tokens per parameter), seven checkpoints each; the loss follows
    the LR-annealing law with a size term, the score a sigmoid of the loss."""
    rows, schedules = [], {}
    for n in SIZES:
        run, sched = f"r{int(n)}", run_schedule(20 * n)
        schedules[run] = sched
        steps = np.round(np.array(FRACTIONS) * sched.total_steps)
        s1, s2 = schedule_areas(sched, steps)
        rows += [(run, n, step, float(true_loss(n, a, b))) for step, a, b in zip(steps, s1, s2)]
    run, params, step, loss = (np.array(c) for c in zip(*rows))
    tokens = step * TOKENS_PER_STEP
    series = Series(
        task="t", metric="acc", model=np.array([f"{r}-step{int(s)}" for r, s in zip(run, step)], dtype=object), run=run.astype(object),
        params=params.astype(float), tokens=tokens, flops=6 * params * tokens, value=rng.binomial(N_ITEMS, true_score(loss)) / N_ITEMS,
        n_items=np.full(len(loss), N_ITEMS), chance=CHANCE, step=step.astype(float),
        extra={"bpb_gold": loss * np.exp(rng.normal(0, 0.003, len(loss)))},
    )
    return series, schedules


BIG_PARAMS = 8e9
BIG_SCHEDULE = run_schedule(20 * BIG_PARAMS)
BIG = Target(name="big", params=BIG_PARAMS, tokens=20 * BIG_PARAMS, schedule=BIG_SCHEDULE)


# --- the areas ---------------------------------------------------------------------------------

def test_constant_schedule_has_no_annealing_area_and_travels_steps_times_tokens() -> None:
    s1, s2 = schedule_areas(schedule("constant", warmup=0), [0, 10, 500, 1000])
    assert s1 == pytest.approx([0, 10 * TOKENS_PER_STEP, 500 * TOKENS_PER_STEP, 1000 * TOKENS_PER_STEP])
    assert np.all(s2 == 0)


def test_areas_are_relative_to_the_peak_and_annealing_grows_as_the_rate_falls() -> None:
    absolute, relative = schedule(peak=3e-3, final=3e-4), schedule(peak=1.0, final=0.1)
    steps = [100, 500, 900, 1000]
    for a, b in zip(schedule_areas(absolute, steps), schedule_areas(relative, steps)):
        assert a == pytest.approx(b)
    s1, s2 = schedule_areas(relative, steps)
    assert np.all(np.diff(s2) > 0) and np.all(np.diff(s1) > 0)
    # a cosine run's forward area is below a constant run's, by about the mean rate (0.55 of the peak)
    assert s1[-1] / (1000 * TOKENS_PER_STEP) == pytest.approx(0.55, abs=0.02)
    # the warm-up's rise is not annealing: no annealing area before the decay starts
    assert schedule_areas(relative, [10])[1][0] == 0


def test_wsd_and_linear_shapes() -> None:
    wsd = learning_rates(schedule("wsd", total=100, warmup=0, peak=1.0, final=0.0, fraction=0.2))
    assert np.all(wsd[:80] == 1.0) and wsd[-1] == pytest.approx(0.05) and np.all(np.diff(wsd[80:]) < 0)
    linear = learning_rates(schedule("linear", total=101, warmup=1, peak=1.0, final=0.0))
    assert linear[51] == pytest.approx(0.5) and linear[0] == 1.0


def test_cosine_matches_the_reference_ladders_training_schedule_step_for_step() -> None:
    from capcast.reference.ladder import load_manifest, member_schedule
    from capcast.reference.train import MemberSpec, _lr_at

    member = load_manifest()["members"][0]
    spec = MemberSpec(**{k: tuple(v) if k == "save_at" else v for k, v in member.items()})
    rates = learning_rates(SimpleNamespace(decay_fraction=None, **member_schedule(member)))
    assert len(rates) == spec.steps
    assert rates == pytest.approx([_lr_at(i, spec) for i in range(spec.steps)], rel=1e-12)


def test_attach_areas_uses_the_step_then_tokens_and_leaves_runs_without_a_schedule_nan() -> None:
    series = Series(task="t", metric="acc", model=np.array(["a-1", "a-2", "b-1"], dtype=object), run=np.array(["a", "a", "b"], dtype=object),
                    params=np.ones(3), tokens=np.array([100 * TOKENS_PER_STEP, 400 * TOKENS_PER_STEP, 5.0]), flops=np.ones(3),
                    value=np.zeros(3), step=np.array([np.nan, 200.0, 1.0]))
    out = attach_areas(series, {"a": schedule("constant", warmup=0)})
    assert out.extra[LR_AREA][:2] == pytest.approx([100 * TOKENS_PER_STEP, 200 * TOKENS_PER_STEP])  # tokens, then the step
    assert np.isnan(out.extra[LR_AREA][2]) and np.isnan(out.extra[ANNEAL_AREA][2])
    assert attach_areas(series, {}) is series and attach_areas(series, {"c": schedule()}) is series


# --- the law -----------------------------------------------------------------------------------

def test_ladder_schedule_recovers_an_annealing_family_and_forecasts_within_its_interval() -> None:
    series, schedules = annealing_family(np.random.default_rng(0))
    fit = LadderScheduleLaw().fit(attach_areas(series, schedules))
    true_big = float(true_loss(BIG_PARAMS, *final_areas(BIG_SCHEDULE)))
    assert fit.x_of(BIG) == pytest.approx(true_big, rel=0.02), fit.summary()
    pred = fit.predict(BIG)
    truth = float(true_score(true_big))
    assert pred.lower <= truth <= pred.upper and abs(pred.mean - truth) < 0.03, (pred, truth)
    assert fit.params["step1.C"] > 0 and "ladder-schedule" in fit.summary() and "LR annealing" in fit.summary()


def test_the_targets_schedule_decides_its_loss_and_a_target_without_one_is_refused() -> None:
    series, schedules = annealing_family(np.random.default_rng(1))
    fit = LadderScheduleLaw().fit(attach_areas(series, schedules))
    # the longest fitting run's schedule stretched to the target's tokens is the target's own shape
    longest = schedules[f"r{int(SIZES[-1])}"]
    same_shape = Target(name="big", params=BIG_PARAMS, tokens=20 * BIG_PARAMS, schedule=stretched(longest, 20 * BIG_PARAMS))
    assert fit.x_of(same_shape) == pytest.approx(fit.x_of(BIG), abs=1e-3)
    # a constant-LR target never anneals: a higher loss than the cosine one at the same tokens
    constant = Target(name="big", params=BIG_PARAMS, tokens=20 * BIG_PARAMS,
                      schedule=schedule("constant", total=BIG_SCHEDULE.total_steps, warmup=0, peak=1.0, final=1.0))
    assert fit.x_of(constant) > fit.x_of(BIG) + 0.02
    with pytest.raises(NotPredictable, match="the target has no schedule"):
        fit.predict(Target(name="big", params=BIG_PARAMS, tokens=20 * BIG_PARAMS))


def test_ladder_schedule_without_schedules_says_what_to_give() -> None:
    series, _ = annealing_family(np.random.default_rng(2))
    with pytest.raises(NotPredictable, match="no schedule: give schedules in the family spec"):
        LadderScheduleLaw().fit(series)
    few = attach_areas(series, {run: run_schedule(20 * n) for run, n in (("r20000000", 2e7), (f"r{int(SIZES[1])}", SIZES[1]))})
    with pytest.raises(NotPredictable, match="needs 8 checkpoints of 4 sizes"):
        LadderScheduleLaw().fit(few)


def scores_table(series: Series) -> pd.DataFrame:
    """The long scores table of an annealing family (acc and its task loss per checkpoint)."""
    rows = []
    for i in range(len(series)):
        base = {"family": "sim", "run": series.run[i], "model": series.model[i], "params": series.params[i], "tokens": series.tokens[i],
                "step": series.step[i], "task": "t"}
        rows += [{**base, "metric": "acc", "value": series.value[i], "n_items": N_ITEMS, "chance": CHANCE},
                 {**base, "metric": "bpb_gold", "value": series.extra["bpb_gold"][i]}]
    return pd.DataFrame(rows)


def test_forecast_from_a_table_carries_the_schedules_to_the_law_and_the_target() -> None:
    from capcast.forecasting.forecast import run_forecasts

    series, schedules = annealing_family(np.random.default_rng(3))
    table = scores_table(series)
    target = Target(name="big", params=BIG_PARAMS, tokens=20 * BIG_PARAMS)
    with_schedules = run_forecasts(table, target, ["t"], "acc", "ladder-schedule", schedules={**schedules, "big": BIG_SCHEDULE})[0]
    assert with_schedules.row.status == "ok", with_schedules.row.reason
    assert with_schedules.target.schedule is BIG_SCHEDULE  # the target's run ("big") found its schedule
    # a target run without a schedule gets the longest fitting run's shape at its own tokens
    shaped = run_forecasts(table, target, ["t"], "acc", "ladder-schedule", schedules=schedules)[0]
    assert shaped.target.schedule.total_steps == BIG_SCHEDULE.total_steps and shaped.row.status == "ok"
    assert shaped.row.forecast == pytest.approx(with_schedules.row.forecast, abs=1e-3)
    without = run_forecasts(table, target, ["t"], "acc", "ladder-schedule")[0]
    assert without.row.status != "ok" and "no schedule" in without.row.reason


def test_capcast_forecast_of_a_family_spec_hands_its_schedules_to_the_law(tmp_path, monkeypatch) -> None:
    import yaml

    import capcast.forecasting.forecast as forecast_module
    from capcast.api import forecast
    from capcast.spec import load_family

    series, schedules = annealing_family(np.random.default_rng(4))
    fields = ("warmup_steps", "peak_lr", "final_lr", "decay", "total_steps", "tokens_per_step")
    spec = {"family": "sim",
            "checkpoints": [{"name": m, "run": r, "model": f"org/{m}", "params": float(n), "tokens": float(d), "step": int(s)}
                            for m, r, n, d, s in zip(series.model, series.run, series.params, series.tokens, series.step)],
            "target": {"name": "big-step800000", "params": BIG_PARAMS, "tokens": 20 * BIG_PARAMS},
            "schedules": {run: {f: getattr(s, f) for f in fields} for run, s in {**schedules, "big": BIG_SCHEDULE}.items()}}
    path = tmp_path / "family.yaml"
    path.write_text(yaml.safe_dump(spec))
    table = scores_table(series)
    monkeypatch.setattr(forecast_module, "scores_for_forecast", lambda *a, **k: (table, load_family(path).target))
    result = forecast(path, tasks=["t"], metric="acc", method="ladder-schedule")[0]
    assert result.row.status == "ok", result.row.reason
    assert result.target.schedule.total_steps == BIG_SCHEDULE.total_steps  # the target run "big"'s own schedule


def test_a_backtest_carries_the_schedules_to_the_law_and_the_held_out_runs() -> None:
    from capcast.forecasting.backtest import backtest_scores

    series, schedules = annealing_family(np.random.default_rng(5))
    table = scores_table(series)
    rows = backtest_scores(table, holdout_largest=1, methods=["ladder-schedule"], tasks=["t"], schedules=schedules).rows
    assert rows and all(r["status"] == "ok" for r in rows), [r["reason"] for r in rows]
    assert all(r["lower"] <= r["actual"] <= r["upper"] for r in rows)
    without = backtest_scores(table, holdout_largest=1, methods=["ladder-schedule"], tasks=["t"]).rows
    assert all(r["status"] != "ok" and "no schedule" in r["reason"] for r in without)
