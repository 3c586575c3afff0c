# tests/eval.mk: (filled in by its area; add with +=)
