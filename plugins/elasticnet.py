"""``elasticnet``: a mix of the l1 and l2 penalties, with the mix searched."""

from autoreg import Float, LinearContext, Technique, hookimpl


class ElasticNet(Technique):
    name = "elasticnet"
    stage = "penalty"
    families = ("linear",)
    description = ("Elastic net: l1_ratio of lasso plus the rest of ridge; keeps groups of "
                   "correlated features together while still zeroing weak ones. strength is a "
                   "fraction of the smallest penalty that zeroes every weight.")
    space = {"strength": Float(1e-3, 1.0, log=True), "l1_ratio": Float(0.05, 0.95)}

    def linear_estimator(self, ctx: LinearContext):
        # At a given l1_ratio every weight is zero from alpha_max / l1_ratio on.
        alpha = self.strength * ctx.alpha_max / self.l1_ratio
        if ctx.task == "regression":
            from sklearn.linear_model import ElasticNet as SkElasticNet

            return SkElasticNet(alpha=alpha, l1_ratio=self.l1_ratio,
                                random_state=ctx.seed)
        from sklearn.linear_model import LogisticRegression

        return LogisticRegression(l1_ratio=self.l1_ratio, C=1.0 / (alpha * ctx.n_samples),
                                  solver="saga", tol=1e-3, max_iter=2000,
                                  random_state=ctx.seed)


@hookimpl
def register_techniques(register):
    register(ElasticNet)
