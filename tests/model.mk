# tests/model.mk: (filled in by its area; add with +=)
