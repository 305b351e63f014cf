"""Work a search reuses across trials, keyed by the array it was computed from."""

from __future__ import annotations

import weakref
from collections import OrderedDict


class ArrayCache:
    """Results computed from one array, kept while that very array lives: the key holds its
    id and the entry a weak reference to it, so an id reused by a later array never matches.
    Entries go when their array is freed, and the least recently used beyond ``size``.

    A search fits many models on the same few arrays (each fold's rows); what depends on the
    rows alone is computed once per array.
    """

    def __init__(self, size: int = 512):
        self.size = size
        self._items: OrderedDict = OrderedDict()
        self._refs: dict[int, weakref.ref] = {}

    def __len__(self) -> int:
        return len(self._items)

    def get(self, X, key=()):
        ref = self._refs.get(id(X))
        hit = self._items.get((id(X), key))
        if hit is None or ref is None or ref() is not X:
            return None
        self._items.move_to_end((id(X), key))
        return hit

    def put(self, X, key, value) -> None:
        ident = id(X)
        ref = self._refs.get(ident)
        if ref is None or ref() is not X:
            self._forget(ident)
            # When X is freed, its entries go with it.
            self._refs[ident] = weakref.ref(X, lambda _, i=ident: self._forget(i))
        self._items[(ident, key)] = value
        while len(self._items) > self.size:
            (old, _), _ = self._items.popitem(last=False)
            if not any(i == old for i, _ in self._items):
                self._refs.pop(old, None)

    def _forget(self, ident: int) -> None:
        self._refs.pop(ident, None)
        for item in [k for k in self._items if k[0] == ident]:
            del self._items[item]
