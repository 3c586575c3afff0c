# tests/vectors.mk: (filled in by its area; add with +=)
