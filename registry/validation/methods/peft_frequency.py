"""Tables of peft 0.21's frequency-domain methods (FourierFT, WaveFT), written from
``peft/tuners/<method>/{config,layer,model}.py`` and tested against adapters peft saves."""

from __future__ import annotations

from registry.validation.methods.spec import Method, Role

FOURIERFT = Method(
    peft_type="FOURIERFT",
    title="Fourier-domain fine-tuning (FourierFT)",
    family="frequency",
    roles=(Role("fourierft_spectrum", "n_frequency"),),
    dims={"n_frequency": 1000},
    source="peft/tuners/fourierft/{layer,model}.py: spectrum [n_frequency]; n_frequency_pattern; "
    "the frequency indices come from random_loc_seed and are not saved",
    patterns={"n_frequency": "n_frequency_pattern"},
)

WAVEFT = Method(
    peft_type="WAVEFT",
    title="Wavelet-domain fine-tuning (WaveFT)",
    family="frequency",
    roles=(Role("waveft_spectrum", "n_frequency"),),
    dims={"n_frequency": 2592, "proportional_parameters": False},
    source="peft/tuners/waveft/{layer,model}.py: spectrum [n_frequency]; n_frequency_pattern; "
    "proportional_parameters sizes each module from all targeted base layers; indices not saved",
    patterns={"n_frequency": "n_frequency_pattern"},
    unpinned={"n_frequency": "proportional_parameters"},
)

TABLES: tuple[Method, ...] = (FOURIERFT, WAVEFT)
