# doc/local.mk: the spec and guides travel in the tarball.
EXTRA_DIST += doc/README.md
EXTRA_DIST += doc/model.md doc/results-model.md
