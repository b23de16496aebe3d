"""Seeded simulations of experiments, run through ``compare`` and ``srm_check`` themselves.

The data are drawn with numpy (vectorized over experiments, one batch of units per look), summed
into the per-arm statistics a gateway would send, and every look of every experiment is decided
by the real ``compare``. Used by ``tests/experiments`` (acceptance at small sizes) and
``python -m bench.experiments`` (the figures of docs/experiments.md). numpy is needed here only,
never by the statistics themselves.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from registry.experiments.compare import compare
from registry.experiments.design import MetricSpec
from registry.experiments.srm import srm_check
from registry.experiments.stats import BinaryStats, RatioStats, Stats

Array = NDArray[np.float64]
# (rng, experiments, units, arm) -> per unit: x (metric summed over the unit's requests), m
# (request count), q (sum over the unit's requests of the squared per-request metric).
UnitDraw = Callable[[np.random.Generator, int, int, int], tuple[Array, Array, Array]]
CODES = {"better": 1, "worse": 2, "within_margin": 3, "inconclusive": 0}


@dataclass(frozen=True, slots=True)
class Looks:
    """Cumulative per-arm sums at each look: ``sums[e, look, arm, field]`` (arm 0 control,
    1 treatment). Fields: binary ``units, successes``; ratio ``units, Σx, Σx², Σm, Σm², Σxm``."""

    kind: str
    sums: Array

    def stats(self, experiment: int, look: int, arm: int) -> Stats:
        row = self.sums[experiment, look, arm].tolist()
        if self.kind == "binary":
            return BinaryStats(int(row[0]), int(row[1]))
        return RatioStats(int(row[0]), *row[1:])


def binary_looks(
    rng: np.random.Generator,
    experiments: int,
    looks: int,
    units_per_look: int,
    p_control: float,
    p_treatment: float,
) -> Looks:
    """A per-unit binary metric, ``units_per_look`` new units per arm at each look."""
    sums = np.zeros((experiments, looks, 2, 2))
    sums[:, :, :, 0] = units_per_look
    for arm, p in enumerate((p_control, p_treatment)):
        sums[:, :, arm, 1] = rng.binomial(units_per_look, p, size=(experiments, looks))
    return Looks("binary", np.cumsum(sums, axis=1))


def ratio_looks(
    rng: np.random.Generator,
    experiments: int,
    looks: int,
    units_per_look: int,
    draw: UnitDraw,
    *,
    per_request: bool = False,
) -> Looks:
    """A ratio metric from ``draw``; ``per_request`` sums it as if every request were an
    independent unit (the naive analysis that ignores the randomization unit)."""
    sums = np.zeros((experiments, looks, 2, 6))
    for look in range(looks):
        for arm in (0, 1):
            x, m, q = draw(rng, experiments, units_per_look, arm)
            if per_request:
                n = m.sum(axis=1)
                fields = (n, x.sum(axis=1), q.sum(axis=1), n, n, x.sum(axis=1))
            else:
                fields = (
                    np.full(experiments, float(units_per_look)),
                    x.sum(axis=1),
                    (x * x).sum(axis=1),
                    m.sum(axis=1),
                    (m * m).sum(axis=1),
                    (x * m).sum(axis=1),
                )
            sums[:, look, arm, :] = np.stack(fields, axis=1)
    return Looks("ratio", np.cumsum(sums, axis=1))


def exponential_units(mean_control: float, mean_treatment: float) -> UnitDraw:
    """One request per unit, an exponential (skewed) metric: a latency, a cost."""

    def draw(
        rng: np.random.Generator, experiments: int, units: int, arm: int
    ) -> tuple[Array, Array, Array]:
        mean = mean_treatment if arm else mean_control
        x = rng.exponential(mean, size=(experiments, units))
        return x, np.ones_like(x), x * x

    return draw


def clustered_units(
    mean_control: float,
    mean_treatment: float,
    *,
    sd_user: float = 1.0,
    sd_request: float = 1.0,
    extra_requests: float = 4.0,
) -> UnitDraw:
    """Several requests per user: ``m = 1 + Poisson(extra_requests)``, per-request metric
    ``y = mean + u + e`` with a user effect ``u ~ N(0, sd_user²)`` shared by the user's requests
    and ``e ~ N(0, sd_request²)``. Drawn per user exactly: ``S = Σe ~ N(0, m sd²)`` and
    ``Σe² = S²/m + sd² χ²_{m-1}`` (independent of ``S``)."""

    def draw(
        rng: np.random.Generator, experiments: int, units: int, arm: int
    ) -> tuple[Array, Array, Array]:
        mean = mean_treatment if arm else mean_control
        m = 1.0 + rng.poisson(extra_requests, size=(experiments, units)).astype(np.float64)
        level = mean + rng.normal(0.0, sd_user, size=m.shape)
        s = rng.normal(0.0, 1.0, size=m.shape) * sd_request * np.sqrt(m)
        within = s * s / m + sd_request**2 * rng.gamma((m - 1.0) / 2.0, 2.0)
        x = m * level + s
        q = m * level * level + 2.0 * level * s + within
        return x, m, q

    return draw


def decide(
    spec: MetricSpec,
    looks: Looks,
    *,
    alpha: float,
    planned_units_per_arm: int,
    peeking: bool = False,
) -> NDArray[np.int8]:
    """``CODES`` of ``compare``'s decision at every look of every experiment. ``peeking``
    decides on the fixed-horizon test instead (``better`` / ``worse`` when its p-value is below
    ``alpha``, by the sign of the difference): what looking at a classic test at every look
    does."""
    experiments, n_looks = looks.sums.shape[:2]
    out = np.zeros((experiments, n_looks), dtype=np.int8)
    for e in range(experiments):
        for look in range(n_looks):
            result = compare(
                spec,
                looks.stats(e, look, 0),
                looks.stats(e, look, 1),
                alpha=alpha,
                planned_units_per_arm=planned_units_per_arm,
            )
            if peeking:
                good = (
                    (result.abs_diff or 0.0) > 0
                    if spec.direction == "increase"
                    else ((result.abs_diff or 0.0) < 0)
                )
                rejected = result.fixed.p_value < alpha
                out[e, look] = (CODES["better"] if good else CODES["worse"]) if rejected else 0
            else:
                out[e, look] = CODES[result.decision]
    return out


def ever(codes: NDArray[np.int8], *decisions: str) -> float:
    """Share of experiments whose decision was one of ``decisions`` at any look."""
    wanted = np.isin(codes, [CODES[d] for d in decisions])
    return float(wanted.any(axis=1).mean())


def srm_flag_rate(
    rng: np.random.Generator,
    runs: int,
    units_per_arm: int,
    *,
    candidate_loss: float = 0.0,
    threshold: float = 0.001,
) -> float:
    """Share of runs ``srm_check`` flags: ``2 · units_per_arm`` units split 50/50, then a
    share ``candidate_loss`` of the candidate's units lost (a crash, a filter)."""
    control = rng.binomial(2 * units_per_arm, 0.5, size=runs)
    candidate = rng.binomial(2 * units_per_arm - control, 1.0 - candidate_loss)
    shares = {"stable": 0.5, "candidate": 0.5}
    flagged = sum(
        srm_check({"stable": int(c), "candidate": int(t)}, shares, threshold).flagged
        for c, t in zip(control.tolist(), candidate.tolist(), strict=True)
    )
    return flagged / runs
