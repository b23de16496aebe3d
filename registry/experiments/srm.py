"""Sample ratio mismatch (SRM): do the arms hold the shares of units they were configured for?

A mismatch means the assignment or the logging lost units in one arm (a crash that only the
candidate hits, a filter, a bot wave), and the units that remain are no longer comparable: every
effect estimate is suspect. Pearson's chi-square goodness-of-fit test on the unit counts
(Fabijan et al., "Diagnosing Sample Ratio Mismatch in Online Controlled Experiments", KDD 2019):

    χ² = Σ_arms (observed - expected)² / expected,   expected = N · share,   df = arms - 1,
    p = P(χ²_df > χ²)   (``distributions.chi2_sf``, the regularized upper incomplete gamma).

It is flagged when ``p < threshold`` (0.001 by default: checked at every look, a stricter
threshold keeps false alarms rare while a real loss of a few percent of the units is still
caught within thousands of units).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

from registry.experiments.distributions import chi2_sf

_SHARE_TOL = 1e-9


@dataclass(frozen=True, slots=True)
class SrmResult:
    chi2: float
    df: int
    p_value: float
    flagged: bool


def srm_check(
    units: Mapping[str, int], expected_share: Mapping[str, float], threshold: float = 0.001
) -> SrmResult:
    """Chi-square test of ``units`` (arm -> count) against ``expected_share`` (arm -> share,
    summing to 1). Equal to ``scipy.stats.chisquare(observed, expected)``. No units at all is
    not a mismatch (``p = 1``)."""
    if set(units) != set(expected_share):
        raise ValueError(
            f"units and expected_share name different arms: {sorted(units)} vs "
            f"{sorted(expected_share)}"
        )
    if len(units) < 2:
        raise ValueError("an SRM check needs at least two arms")
    if not 0 < threshold < 1:
        raise ValueError(f"threshold must be in (0, 1), got {threshold}")
    for arm, share in expected_share.items():
        if not (math.isfinite(share) and 0 < share < 1):
            raise ValueError(f"expected share of {arm!r} must be in (0, 1), got {share}")
    if abs(math.fsum(expected_share.values()) - 1.0) > _SHARE_TOL:
        raise ValueError(f"expected shares must sum to 1, got {dict(expected_share)}")
    for arm, count in units.items():
        if isinstance(count, bool) or not isinstance(count, int) or count < 0:
            raise ValueError(f"units of {arm!r} must be an int >= 0, got {count!r}")
    total = sum(units.values())
    df = len(units) - 1
    if total == 0:
        return SrmResult(0.0, df, 1.0, False)
    chi2 = math.fsum(
        (units[arm] - total * share) ** 2 / (total * share) for arm, share in expected_share.items()
    )
    p = chi2_sf(chi2, df)
    return SrmResult(chi2, df, p, p < threshold)
