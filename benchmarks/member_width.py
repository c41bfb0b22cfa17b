"""When members too wide to vote keep their votes in ``auto``'s mixture: the rules of
``capcast.laws.mixture.WIDE_MEMBER_RULES`` on the development data only, each on the same
forecasts; writes benchmarks/member_width.txt.

    python benchmarks/member_width.py [--draws 30]

The same splits and report as benchmarks/auto_weighting.py (Pythia fit up to 410m / 1b / 1.4b /
2.8b, the mini-ladder; simulated families), on the shapes where the rule matters: "loss-exp"
(where ``loss-error``, the only candidate that foresees the acceleration, is often the wide
member), "loss", "law" and "saturating". Rules: "lone" (the default: wide members vote only where
a single narrow member is left and their median lies outside its 90% interval), "disagree" (the
same test however many narrow members are left) and "always" (no member-width rule).
pythia-deduped and OpenLM (validation) are not read.
"""

from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import auto_weighting  # noqa: E402

from capcast.laws.mixture import WIDE_MEMBER_RULES  # noqa: E402

SHAPES = ("loss-exp", "loss", "law", "saturating")


def main() -> None:
    auto_weighting.option_benchmark("member_width", "when auto's wide members vote, on the development data", "wide_members",
                                    WIDE_MEMBER_RULES, SHAPES, "wide members")

if __name__ == "__main__":
    main()
