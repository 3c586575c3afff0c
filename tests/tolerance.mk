# tests/tolerance.mk: (filled in by its area; add with +=)
