# tests/ref.mk: (filled in by its area; add with +=)
