"""``l2``: the ridge penalty (weight decay). Shrinks weights; makes no zeros."""

from autoreg import Float, LinearContext, Technique, hookimpl


class L2(Technique):
    name = "l2"
    stage = "penalty"
    families = ("linear",)
    description = ("Ridge: penalizes the sum of squared weights, shrinking them smoothly. "
                   "strength is the penalty per training row on standardized features.")
    space = {"strength": Float(1e-5, 1e2, log=True)}

    def linear_estimator(self, ctx: LinearContext):
        if ctx.task == "regression":
            from sklearn.linear_model import Ridge

            return Ridge(alpha=self.strength * ctx.n_samples, random_state=ctx.seed)
        from sklearn.linear_model import LogisticRegression

        return LogisticRegression(l1_ratio=0.0, C=1.0 / (self.strength * ctx.n_samples),
                                  max_iter=1000, random_state=ctx.seed)


@hookimpl
def register_techniques(register):
    register(L2)
