"""Model families: the kinds of model techniques act on.

A family is an object with a ``name``, a ``needs`` table (stage -> the :class:`Technique` method
a technique of that stage must implement for this family) and the methods the search calls for
every trial, on preprocessed rows (``X`` dense or CSR, ``y`` floats or class indices):

``context(X, y, task, n_classes, seed, groups, options)``
    the technique context for the whole training data (``options``: family settings such as
    ``hidden``); ``fold_context(ctx, X, y, groups)`` the same for one fold's rows.
``train(recipe, ctx, X, y, X_val, y_val, init=None, fold_fits=())``
    fit the recipe's penalty and training techniques; ``X_val`` is None for the final fit after
    cross-validation, when ``fold_fits`` (that trial's fold models) may inform it; ``init`` is a
    fit of the same penalty at nearby strengths to warm-start from. Returns a fit object.
``get_weights(fit)`` / ``set_weights(fit, weights)``
    the weight matrices (float arrays, inputs x outputs) handed to compression techniques, and a
    new fit carrying their result (arrays or :class:`~autoreg.export.Quantized`).
``fine_tune(fit, weights, epochs, recipe, ctx, X, y, X_val, y_val)``
    a new fit trained on from ``weights`` with their zeros held at zero.
``decision(fit, X)``
    raw outputs (samples x outputs) of exactly the model that :meth:`predictor` exports.
``weights(fit)``
    the weights whose exact zeros count toward ``sparsity`` (as the model computes with them).
``predictor(fit, prep, task, classes)``
    the shippable predictor (compact export, raw rows in).
``refit_after_holdout``
    whether the final model of a holdout search is refitted on all non-test rows.
"""

from ._linear import LinearFamily
from ._mlp import MLPFamily

FAMILIES = {"linear": LinearFamily(), "mlp": MLPFamily()}

__all__ = ["FAMILIES", "LinearFamily", "MLPFamily"]
