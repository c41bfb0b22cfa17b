"""What keeping fits by series (``capcast.plugins.builtin.laws.LazyLaw``, ``RECENT_FITS``) saves:
benchmarks/forecast_accuracy.py's splits (Pythia at four cutoffs, pythia-deduped, OpenLM's three
sets, the mini-ladder; every method of its tables) fitted with every fit computed (``LazyLaw.fit``
as it was) and with fits kept, interleaved, in one run, every cache emptied before each pass; the
rows must be identical. Writes benchmarks/fit_cache.txt.

    python benchmarks/fit_cache.py [--rounds 2]

The splits run one at a time in this process (no pool), so the times compare the same work.
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import forecast_accuracy as fa  # noqa: E402

from capcast.laws import loss_law  # noqa: E402
from capcast.plugins.builtin import laws as builtin  # noqa: E402

JOBS = ([("pythia", ("pythia", c)) for c in ("1.4b", "410m", "1b", "2.8b")] + [("pythia", ("pythia-deduped", "1.4b"))] +
        [("openlm", s) for s in fa.OPENLM_SETS] + [("miniladder", None)])


CACHED_FIT = builtin.LazyLaw.fit


def uncached_fit(law, series):
    """LazyLaw.fit as it was before fits were kept: the law's own fit, every time."""
    return law.law.fit(series)


def run_all(cached: bool) -> tuple[float, list]:
    """(seconds, every split's rows) with fits kept by series or not, from empty caches."""
    builtin.LazyLaw.fit = CACHED_FIT if cached else uncached_fit
    fa.REGISTRY = fa._Registry()
    # the built-in laws are module-level objects that every registry shares: empty their caches
    laws = [*fa.REGISTRY.base.laws.values(), *fa.REGISTRY.extra.values()]
    for law in laws + [c for law in laws for c in getattr(law, "kwargs", {}).get("candidates", ())]:
        if isinstance(law, builtin.LazyLaw):
            law._fits.clear()
    loss_law._fit_loss_law_cached.cache_clear()  # step 1's own cache (on in both settings) starts empty too
    started = time.perf_counter()
    rows = [fa._job(job)[1] for job in JOBS]
    return time.perf_counter() - started, rows


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--out", type=Path, default=HERE / "fit_cache.txt")
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    times = {False: [], True: []}
    reference = None
    for _ in range(args.rounds):
        for setting in (False, True):
            seconds, rows = run_all(setting)
            times[setting].append(seconds)
            reference = repr(rows) if reference is None else reference  # repr: NaN equals NaN
            assert repr(rows) == reference, "the cache changed a row"
            count = sum(len(r) for r in rows)
    off, on = min(times[False]), min(times[True])
    lines = [f"# python benchmarks/fit_cache.py --rounds {args.rounds}: forecast_accuracy.py's {len(JOBS)} splits in one process, "
             "cache off and on interleaved; best of the rounds",
             f"every fit computed: {off:.1f} s  (rounds: {', '.join(f'{t:.1f}' for t in times[False])})",
             f"fits kept by series (RECENT_FITS = {builtin.RECENT_FITS}): {on:.1f} s  (rounds: {', '.join(f'{t:.1f}' for t in times[True])})",
             f"speed-up: {off / on:.2f}x; rows identical in every pass ({count} rows)"]
    args.out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
