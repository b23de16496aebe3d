"""Properties of stacking over generated sites: for any ranks, alphas, rsLoRA flags, module
sets and sample counts (zeros included), the aggregate is the weighted mean, the same bytes in
reverse order, and the same bytes without its zero-sample sites."""

from __future__ import annotations

import tempfile
from pathlib import Path

import torch
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from registry.maths.aggregate import aggregate
from registry.maths.combine import Input

from .aggregate_builders import Q, V, deltas, random_factors, rel, sha, weighted_mean, write_site

_SITE = st.tuples(
    st.dictionaries(st.sampled_from([Q, V]), st.integers(1, 5), min_size=1),  # ranks
    st.sampled_from([1.0, 4.0, 16.0]),  # alpha
    st.booleans(),  # rsLoRA
    st.sampled_from([0, 1, 7, 250]),  # samples
)


@settings(max_examples=20, deadline=None)
@given(specs=st.lists(_SITE, min_size=1, max_size=4), seed=st.integers(0, 2**16))
def test_stacking_is_the_weighted_mean_in_any_order(
    specs: list[tuple[dict[str, int], float, bool, int]], seed: int
) -> None:
    assume(any(samples > 0 for *_, samples in specs))  # else no_samples, tested elsewhere
    gen = torch.Generator().manual_seed(seed)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        sites = [
            Input(write_site(root / f"s{k}", random_factors(gen, ranks), alpha=a, rslora=rs), w)
            for k, (ranks, a, rs, w) in enumerate(specs)
        ]
        live = [s for s in sites if s.weight > 0]
        forward = aggregate(sites, root / "forward")
        backward = aggregate(sites[::-1], root / "backward")
        only_live = aggregate(live, root / "live")
        assert sha(forward.out_dir) == sha(backward.out_dir) == sha(only_live.out_dir)
        got, want = deltas(forward.out_dir), weighted_mean(live)
        assert set(got) == set(want)
        assert all(rel(got[n], want[n]) < 1e-5 for n in want)
        assert forward.recipe["exact"] is True
