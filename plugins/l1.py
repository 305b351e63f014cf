"""``l1``: the lasso penalty. Coordinate descent (linear) or a proximal step (mlp) gives exact
zeros."""

from autoreg import Float, LinearContext, Technique, hookimpl


class L1(Technique):
    name = "l1"
    stage = "penalty"
    families = ("linear", "mlp")
    linear_path = {"relax": 0.0}
    description = ("Lasso: penalizes the sum of absolute weights and sets weak ones to exactly "
                   "zero. linear: strength is a fraction of the smallest penalty that zeroes "
                   "every weight, and relax the share of a light-ridge refit of the kept features "
                   "in the final weights (the relaxed lasso); mlp: the penalty per weight, "
                   "applied by soft-thresholding after every step.")

    @classmethod
    def search_space(cls, family, task):
        if family == "mlp":
            return {"strength": Float(1e-3, 3.0, log=True)}
        return {"strength": Float(1e-3, 1.0, log=True), "relax": Float(0.0, 1.0)}

    def linear_estimator(self, ctx: LinearContext):
        from autoreg.solvers import relaxed

        return relaxed(self._lasso(ctx), ctx.task, ctx.n_samples, getattr(self, "relax", 0.0))

    def _lasso(self, ctx: LinearContext):
        alpha = self.strength * ctx.alpha_max
        if ctx.task == "regression":
            from sklearn.linear_model import Lasso

            return Lasso(alpha=alpha, random_state=ctx.seed)
        from autoreg.solvers import ElasticNetClassifier

        return ElasticNetClassifier(alpha=alpha, l1_ratio=1.0)

    def mlp_prox(self, weights, step, ctx):
        from autoreg.prox import soft_threshold

        for w in weights:
            soft_threshold(w, step * self.strength)


@hookimpl
def register_techniques(register):
    register(L1)
