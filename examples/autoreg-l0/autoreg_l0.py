"""``l0``: a best-subset (L0) penalty, approximated by orthogonal matching pursuit.

An example third-party autoreg plugin. Install it with ``pip install examples/autoreg-l0``;
autoreg finds it through the ``autoreg`` entry-point group.
"""

from autoreg import Float, LinearContext, Technique, hookimpl

MAX_DENSE_CELLS = 20_000_000  # 160 MB of float64


class L0(Technique):
    name = "l0"
    stage = "penalty"
    families = ("linear",)
    tasks = ("regression",)
    description = ("Best subset (L0): keeps only a fraction of the features, chosen greedily by "
                   "orthogonal matching pursuit; every other weight is exactly zero.")
    space = {"keep": Float(0.01, 1.0, log=True)}

    def linear_estimator(self, ctx: LinearContext):
        from sklearn.linear_model import OrthogonalMatchingPursuit

        if ctx.sparse and ctx.n_samples * ctx.n_features > MAX_DENSE_CELLS:
            raise ValueError("l0 needs dense input, and this sparse data is too large to densify")

        class DenseOMP(OrthogonalMatchingPursuit):
            # OMP takes dense input only; one-hot encoded columns arrive as a sparse matrix.
            def fit(self, X, y):
                return super().fit(X.toarray() if hasattr(X, "toarray") else X, y)

        # OMP cannot select more features than there are, nor fewer than one.
        k = min(ctx.n_features, max(1, round(self.keep * ctx.n_features)))
        return DenseOMP(n_nonzero_coefs=k)


@hookimpl
def register_techniques(register):
    register(L0)
