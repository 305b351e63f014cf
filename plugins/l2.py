"""``l2``: the ridge penalty (weight decay). Shrinks weights; makes no zeros."""

from autoreg import Float, LinearContext, Technique, hookimpl


class L2(Technique):
    name = "l2"
    stage = "penalty"
    families = ("linear", "mlp")
    linear_path = {}
    description = ("Ridge: penalizes the sum of squared weights, shrinking them smoothly. "
                   "linear: strength is the penalty per training row on standardized features; "
                   "mlp: decoupled weight decay, each step shrinks weights by 1/(1 + lr*strength).")

    @classmethod
    def search_space(cls, family, task):
        if family == "mlp":
            return {"strength": Float(1e-2, 30.0, log=True)}
        return {"strength": Float(1e-5, 1e2, log=True)}

    def linear_estimator(self, ctx: LinearContext):
        if ctx.task == "regression":
            from sklearn.linear_model import Ridge

            return Ridge(alpha=self.strength * ctx.n_samples, random_state=ctx.seed)
        from sklearn.linear_model import LogisticRegression

        return LogisticRegression(l1_ratio=0.0, C=1.0 / (self.strength * ctx.n_samples),
                                  max_iter=1000, random_state=ctx.seed)

    def mlp_prox(self, weights, step, ctx):
        for w in weights:
            w.mul_(1.0 / (1.0 + step * self.strength))


@hookimpl
def register_techniques(register):
    register(L2)
