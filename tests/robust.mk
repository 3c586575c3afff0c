# tests/robust.mk: (filled in by its area; add with +=)
