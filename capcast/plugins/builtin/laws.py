"""Built-in laws, registered through the same ``register_laws`` hook a third-party plugin uses.

They are registered by reference (:class:`LazyLaw`): the law modules pull in statsmodels and scipy
(about 2 s), so a law's module is imported at its first use (a fit, or any attribute other than
its name, description and ``auto_candidate``), and ``capcast plugins`` or ``capcast eval`` never
pay for them. ``tests/plugins/test_startup.py`` checks that the names and descriptions here are the
laws' own.
"""

from __future__ import annotations

import importlib
from collections import OrderedDict
from typing import Any

from capcast import hookimpl


# Fits a law keeps, by its series' fingerprint: ``auto`` fits each candidate on the whole series
# and on every fold, and a backtest or benchmark asks for the same candidates alone, and for ``auto``
# under another rule, on the same series (benchmarks/forecast_accuracy.py fits each one up to four
# times). A fit is a pure function of the law and the series, and nothing mutates one.
RECENT_FITS = 32


class LazyLaw:
    """A law named by ``"module:Class"`` and its keyword arguments, built at its first use; its
    last :data:`RECENT_FITS` fits (and refusals) are kept by series."""

    def __init__(self, target: str, name: str, description: str, auto_candidate: bool = False, kwargs: dict[str, Any] | None = None):
        self.target, self.name, self.description, self.auto_candidate = target, name, description, auto_candidate
        self.kwargs = dict(kwargs or {})
        self._law = None
        self._fits: OrderedDict = OrderedDict()

    @property
    def law(self):
        """The real law object (its module imported on first access)."""
        if self._law is None:
            module, _, cls = self.target.partition(":")
            self._law = getattr(importlib.import_module(module), cls)(**self.kwargs)
        return self._law

    def fit(self, series):
        from capcast.laws.base import FIT_REFUSALS  # a law's refusals are outcomes too: kept like fits, raised again

        key = series.fingerprint()
        if key in self._fits:
            self._fits.move_to_end(key)
            fit, refusal = self._fits[key]
            if refusal is not None:
                raise refusal.with_traceback(None)
            return fit
        try:
            fit, refusal = self.law.fit(series), None
        except FIT_REFUSALS as exc:
            fit, refusal = None, exc
        self._fits[key] = (fit, refusal)
        if len(self._fits) > RECENT_FITS:
            self._fits.popitem(last=False)
        if refusal is not None:
            raise refusal
        return fit

    def __getattr__(self, attribute: str):
        if attribute.startswith("__") or attribute in ("_law", "_fits", "target", "kwargs"):
            raise AttributeError(attribute)
        return getattr(self.law, attribute)

    def __getstate__(self):  # processes get the reference, not the built law nor its fits
        return {"target": self.target, "name": self.name, "description": self.description,
                "auto_candidate": self.auto_candidate, "kwargs": self.kwargs, "_law": None, "_fits": OrderedDict()}

    def __setstate__(self, state):
        self.__dict__.update(state)

    def __repr__(self) -> str:
        return f"LazyLaw({self.target}, name={self.name!r})"


class LazyAutoLaw(LazyLaw):
    """``auto`` by reference: the registry hands it its candidates before anything is imported."""

    def with_candidates(self, candidates) -> "LazyAutoLaw":
        return LazyAutoLaw(self.target, self.name, self.description, kwargs={**self.kwargs, "candidates": tuple(candidates)})


# The laws ``auto`` chooses among, in order of preference on ties.
AUTO_CANDIDATES = (
    LazyLaw("capcast.laws.sigmoid:SigmoidLaw", "sigmoid",
            "score vs log10 compute: sigmoid above the chance floor, binomial likelihood (Epoch-style)", auto_candidate=True),
    LazyLaw("capcast.laws.ladder:LadderLaw", "ladder",
            "two-step (Bhagia et al. 2024): (params, tokens) -> task loss on each run's final checkpoints "
            "-> score sigmoid over all checkpoints", auto_candidate=True),
    LazyLaw("capcast.laws.loss_error:LossErrorLaw", "loss-error",
            "two-step (Gadre et al. 2024): (params, tokens) -> validation loss -> error = eps - k exp(-gamma L)", auto_candidate=True),
    # The published laws on the score itself (Krajewski et al. 2025; COD's per-cluster law, Xu et al. 2025).
    LazyLaw("capcast.laws.logacc_power:LogAccPowerLaw", "logacc-power",
            "Krajewski et al. 2025: -log((score - chance)/(1 - chance)) = A*C^-alpha, or A/N^alpha + B/D^beta "
            "across tokens-per-parameter ratios; points > 5% above chance", auto_candidate=True),
    LazyLaw("capcast.laws.saturating_power:SaturatingPowerLaw", "saturating-power",
            "COD (Xu et al. 2025) per-cluster law on the whole benchmark: score = chance + (1 - chance)*exp(-a*C^-b - c), "
            "binomial likelihood; exp(-c) is the ceiling", auto_candidate=True),
    # Tissue et al.'s LR-annealing law as ladder's step 1; needs the family spec's schedules (auto skips it without them).
    LazyLaw("capcast.laws.ladder_schedule:LadderScheduleLaw", "ladder-schedule",
            "two-step, schedule-aware: task loss = E + A/N^alpha + B*S1^-beta - C*S2 (Tissue et al. 2024 LR areas) on every "
            "checkpoint -> score sigmoid; needs schedules in the family spec", auto_candidate=True),
)
BASELINES = (
    LazyLaw("capcast.laws.baselines:LinearLaw", "linear",
            "baseline: straight line in score vs log10 compute over final checkpoints (OLS)"),
    LazyLaw("capcast.laws.baselines:LogitLinearLaw", "logit-linear",
            "baseline: line in logit(score above chance) vs log10 compute over final checkpoints (OLS)"),
)
AUTO = LazyAutoLaw("capcast.laws.auto:AutoLaw", "auto",
                   "combines the candidate laws per task, weighted by their forward-chaining fold errors; persistence where there is no trend",
                   kwargs={"candidates": AUTO_CANDIDATES})
PASSUNTIL_DESCRIPTION = "Hu et al. 2023: log(-log pass rate) linear in log N; for pass rates measured by PassUntil"
OTHERS = (
    # PassUntil (Hu et al.): for pass rates measured by `capcast sample`; on N, or on compute.
    LazyLaw("capcast.laws.passuntil:PassUntilLaw", "passuntil", PASSUNTIL_DESCRIPTION),
    LazyLaw("capcast.laws.passuntil:PassUntilLaw", "passuntil_compute", PASSUNTIL_DESCRIPTION,
            kwargs={"axis": "compute", "name": "passuntil_compute"}),
    # For losses (bpb_gold, logprob_gold, loss, ppl): E + A * C^-alpha; `auto` on a loss metric uses it.
    LazyLaw("capcast.laws.power:PowerLaw", "power",
            "loss vs compute: E + A * C^-alpha toward a floor E >= 0 (least squares on log loss), for losses"),
)
BUILTIN_LAWS = (*AUTO_CANDIDATES, *BASELINES, AUTO, *OTHERS)


@hookimpl
def register_laws(register):
    for law in BUILTIN_LAWS:
        register(law)
