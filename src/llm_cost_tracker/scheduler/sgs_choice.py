"""Which SGS decodes each proposal of a single-mode elitist search: serial or parallel.

The default (``sgs_choice="share"``) decodes a fixed share ``parallel`` of the proposals with the
parallel SGS until progress ``parallel_until`` and the serial SGS after it. The best length of
that phase differs by instance (docs/scheduler.md: the resource-bound fifth of j120 and the next
one move in opposite directions), so two instance-adaptive rules are kept beside it:

- ``"gene"``: Hartmann's (2002) self-adapting genetic algorithm. Each member carries the SGS that
  decoded it; a child is decoded with the SGS of the parent whose list it varies, flipped with
  probability ``sgs_flip``, for the whole run, and keeps it as its own gene. Selection then decides
  per instance which decoder the population keeps. The start population draws a share
  ``parallel`` of parallel decodes, as the default does.
- ``"adaptive"``: one parallel share for the whole run that follows the parallel decodes' success:
  after each generation it moves a fifth of the way toward the parallel children's survival rate
  over the sum of both decoders' rates (probability matching), kept within [0.1, 0.9].

Either way each decode is one schedule, counted where it is made (annealing.py); this module only
draws the row mask.
"""

from __future__ import annotations

import numpy as np

__all__ = ["CHOICES", "SgsChoice"]

CHOICES = ("share", "gene", "adaptive")
_LOW, _HIGH, _STEP = 0.1, 0.9, 0.2  # bounds of the adaptive share and its step toward the target


class SgsChoice:
    """Draws, per decode call, the rows to decode with the parallel SGS (``None``: all serial)."""

    def __init__(
        self, rule: str, rng: np.random.Generator, parallel: float, until: float, flip: float
    ) -> None:
        if rule not in CHOICES:
            raise ValueError(f"sgs_choice must be one of {', '.join(CHOICES)}, not {rule!r}")
        self.rule = rule if parallel > 0 else "share"  # no parallel share (multi-mode, batches): serial only
        self.rng, self.parallel, self.until, self.flip = rng, parallel, until, flip
        self.share = parallel  # the adaptive rule's current share
        self.first = True  # the next call decodes the start population (no parents)

    def rows(self, progress: float, parents: np.ndarray) -> np.ndarray | None:
        """Parallel rows among proposals whose parents' genes are ``parents`` (bool, one per row)."""
        first, self.first = self.first, False
        if self.parallel <= 0:
            return None
        if self.rule == "share":  # the draw of the fixed rule, as before this module existed
            return self.rng.random(parents.size) < self.parallel if progress < self.until else None
        if self.rule == "gene" and not first:
            out: np.ndarray = parents ^ (self.rng.random(parents.size) < self.flip)
            return out
        return self.rng.random(parents.size) < (self.parallel if first else self.share)

    def observe(self, parallel: np.ndarray, survived: np.ndarray) -> None:
        """After a selection: which children were parallel decodes, and which of them survived."""
        if self.rule != "adaptive" or parallel.size == 0:
            return
        rate = [(survived[parallel == s].sum() + 1) / ((parallel == s).sum() + 2) for s in (True, False)]
        target = rate[0] / (rate[0] + rate[1])
        self.share = float(min(_HIGH, max(_LOW, self.share + _STEP * (target - self.share))))
