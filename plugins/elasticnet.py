"""``elasticnet``: a mix of the l1 and l2 penalties, with the mix searched."""

from autoreg import Float, LinearContext, Technique, hookimpl


class ElasticNet(Technique):
    name = "elasticnet"
    stage = "penalty"
    families = ("linear", "mlp")
    linear_path = {"l1_ratio": 0.5, "relax": 0.0}
    description = ("Elastic net: l1_ratio of lasso plus the rest of ridge; keeps groups of "
                   "correlated features together while still zeroing weak ones. linear: strength "
                   "is a fraction of the smallest penalty that zeroes every weight, relax as for "
                   "l1; mlp: the penalty per weight (soft-thresholding and weight decay after "
                   "every step).")

    @classmethod
    def search_space(cls, family, task):
        if family == "mlp":
            return {"strength": Float(1e-3, 10.0, log=True), "l1_ratio": Float(0.05, 0.95)}
        return {"strength": Float(1e-3, 1.0, log=True), "l1_ratio": Float(0.05, 0.95),
                "relax": Float(0.0, 1.0)}

    def linear_estimator(self, ctx: LinearContext):
        from autoreg.solvers import relaxed

        return relaxed(self._enet(ctx), ctx.task, ctx.n_samples, getattr(self, "relax", 0.0))

    def _enet(self, ctx: LinearContext):
        # At a given l1_ratio every weight is zero from alpha_max / l1_ratio on.
        alpha = self.strength * ctx.alpha_max / self.l1_ratio
        if ctx.task == "regression":
            from sklearn.linear_model import ElasticNet as SkElasticNet

            return SkElasticNet(alpha=alpha, l1_ratio=self.l1_ratio,
                                random_state=ctx.seed)
        from autoreg.solvers import ElasticNetClassifier

        return ElasticNetClassifier(alpha=alpha, l1_ratio=self.l1_ratio)

    def mlp_prox(self, weights, step, ctx):
        from autoreg.prox import soft_threshold

        # The proximal map of a*|w| + b/2*w^2 is soft-thresholding by a, then shrinking by 1+b.
        t1 = step * self.strength * self.l1_ratio
        t2 = step * self.strength * (1.0 - self.l1_ratio)
        for w in weights:
            soft_threshold(w, t1)
            w.mul_(1.0 / (1.0 + t2))


@hookimpl
def register_techniques(register):
    register(ElasticNet)
