"""``pruning``: remove the smallest weights for good, then let the rest make up for them."""

import numpy as np

from autoreg import Choice, Float, Technique, hookimpl


class Pruning(Technique):
    name = "pruning"
    stage = "compression"
    families = ("linear", "mlp")
    order = 10
    description = ("Magnitude pruning: sets the amount (fraction) of smallest weights to zero, "
                   "per layer or across all layers (scope), then fine-tunes the rest with the "
                   "zeros held (mlp) or, with refit, refits the kept features (linear).")

    @classmethod
    def search_space(cls, family, task):
        if family == "mlp":
            return {"amount": Float(0.3, 0.98), "scope": Choice(("layer", "global"))}
        return {"amount": Float(0.05, 0.95), "refit": Choice((False, True))}

    def compress(self, weights, ctx):
        scope = getattr(self, "scope", "layer")
        pruned = [np.array(w, dtype=np.float64) for w in weights]
        if scope == "global":
            cut = _cutoff(np.concatenate([np.abs(w).ravel() for w in pruned]), self.amount)
            cuts = [cut] * len(pruned)
        else:
            cuts = [_cutoff(np.abs(w).ravel(), self.amount) for w in pruned]
        for w, cut in zip(pruned, cuts, strict=True):
            w[np.abs(w) <= cut] = 0.0
        if ctx.family == "mlp" or getattr(self, "refit", False):
            return ctx.fine_tune(pruned)
        return pruned


def _cutoff(magnitudes, amount):
    """The magnitude at or below which ``amount`` of the weights fall (ties all go)."""
    k = int(np.floor(amount * magnitudes.size))
    return -1.0 if k == 0 else float(np.partition(magnitudes, k - 1)[k - 1])


@hookimpl
def register_techniques(register):
    register(Pruning)
