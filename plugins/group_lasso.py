"""``group_lasso``: whole groups of weights to zero, so whole features (and units) leave."""

from autoreg import Choice, Float, LinearContext, Technique, hookimpl


class GroupLasso(Technique):
    name = "group_lasso"
    stage = "penalty"
    families = ("linear", "mlp")
    linear_path = {"relax": 0.0}
    description = ("Group lasso: penalizes the norm of each group of weights, so a group is "
                   "kept or dropped as a whole. Groups are input columns (all one-hot columns "
                   "of a categorical column together) unless given. linear: strength is a "
                   "fraction of the smallest penalty that drops every group, relax as for l1; "
                   "mlp: groups are each feature's outgoing weights and, with units, each hidden "
                   "unit's.")

    @classmethod
    def search_space(cls, family, task):
        if family == "mlp":
            return {"strength": Float(1e-2, 3.0, log=True), "units": Choice((False, True))}
        return {"strength": Float(1e-3, 1.0, log=True), "relax": Float(0.0, 1.0)}

    def linear_estimator(self, ctx: LinearContext):
        from autoreg import solvers

        alpha = self.strength * solvers.group_alpha_max(ctx.X, ctx.y, ctx.groups, ctx.task)
        cls = solvers.GroupLassoRegressor if ctx.task == "regression" \
            else solvers.GroupLassoClassifier
        est = cls(alpha=alpha, groups=ctx.groups)
        return solvers.relaxed(est, ctx.task, ctx.n_samples, getattr(self, "relax", 0.0))

    def mlp_prox(self, weights, step, ctx):
        from autoreg.prox import group_soft_threshold_all_rows, group_soft_threshold_rows

        t = step * self.strength
        group_soft_threshold_rows(weights[0], ctx.groups, t)
        if self.units:
            for w in weights[1:]:
                group_soft_threshold_all_rows(w, t)


@hookimpl
def register_techniques(register):
    register(GroupLasso)
