"""Model families: the kinds of model techniques act on."""

from ._linear import LinearFamily

FAMILIES = {"linear": LinearFamily()}

__all__ = ["FAMILIES", "LinearFamily"]
