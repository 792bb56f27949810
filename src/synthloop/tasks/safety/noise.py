"""The noisy danger oracle: false positives added on top of the true danger bits.

Spec A.6: for every executed step whose true bit is 0, a spurious warning is
added with probability p, drawn from one generator seeded with seed + 7777
and shared by all episodes and rounds of a run. The reference injected noise
only in its base simulator, so two environments (off switch, whisky) never
got any; here the noise is a separate stage applied after any environment's
rollout, so it is uniform by construction. True bits are never dropped
(the oracle has no false negatives), and true and reported bits are kept apart.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

#: the reference's offset between the run seed and the false-positive generator's seed
NOISE_SEED_OFFSET = 7777


class NoiseModel:
    """Adds spurious warnings with a fixed false-positive rate; one instance per run."""

    def __init__(self, false_positive_rate: float = 0.0, seed: int = 42) -> None:
        """``seed`` is the run seed; the generator is seeded with ``seed + 7777`` as in the reference."""
        if not 0.0 <= false_positive_rate <= 1.0:
            raise ValueError(f"false_positive_rate must be in [0, 1], got {false_positive_rate}")
        self.false_positive_rate = float(false_positive_rate)
        self.seed = seed
        self._rng = np.random.default_rng(seed + NOISE_SEED_OFFSET)

    def report(self, true_bits: Sequence[bool]) -> list[bool]:
        """The bits the oracle reports: every true bit, plus a spurious one with probability p elsewhere.

        At p = 0 no random number is drawn, so a noiseless run is unaffected by the generator.
        """
        if self.false_positive_rate == 0.0:
            return [bool(b) for b in true_bits]
        out = []
        for bit in true_bits:
            out.append(True if bit else bool(self._rng.random() < self.false_positive_rate))
        return out
