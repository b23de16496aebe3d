"""A/B experiments between two adapter versions, the pure statistics: arms ``stable`` (control)
and ``candidate`` (treatment), randomized per unit (user or tenant).

* ``stats``: the per-arm sufficient statistics a gateway sends (``BinaryStats``,
  ``RatioStats``) and the delta-method variance of a ratio metric;
* ``design``: ``MetricSpec``, ``ExperimentDesign`` and ``sample_size_per_arm``;
* ``srm``: the sample ratio mismatch check;
* ``sequential``: the always-valid mSPRT interval and p-value;
* ``compare``: one metric compared, its fixed-horizon and sequential intervals and decision;
* ``readout``: every metric, the SRM check, multiplicity and the overall decision
  (``analyze``), recorded as a JSON-safe dict (``codec``) and replayable.

numpy-free and stdlib-only at run time (``statistics.NormalDist``, ``math.erfc``, ``math.lgamma``),
no database. Formulas, sources and a worked example: ``docs/experiments.md``.
"""

from registry.experiments.compare import Decision, MetricResult, compare
from registry.experiments.design import ExperimentDesign, MetricSpec, sample_size_per_arm
from registry.experiments.readout import Readout, analyze, replay
from registry.experiments.sequential import Interval
from registry.experiments.srm import SrmResult, srm_check
from registry.experiments.stats import BinaryStats, RatioStats, Stats

__all__ = [
    "BinaryStats",
    "Decision",
    "ExperimentDesign",
    "Interval",
    "MetricResult",
    "MetricSpec",
    "RatioStats",
    "Readout",
    "SrmResult",
    "Stats",
    "analyze",
    "compare",
    "replay",
    "sample_size_per_arm",
    "srm_check",
]
