# doc/local.mk: the spec and guides travel in the tarball.
EXTRA_DIST += doc/README.md
EXTRA_DIST += doc/spec.md doc/head.md doc/elem.md doc/hash.md doc/importance.md \
	doc/sketch.md doc/reconstruct.md doc/budget.md doc/prefill.md doc/attend.md \
	doc/errors.md doc/tolerance.md doc/bound.md doc/moment.md doc/quant.md
EXTRA_DIST += doc/porting.md
EXTRA_DIST += doc/eval.md doc/methods.md doc/results.md
EXTRA_DIST += doc/files.md
EXTRA_DIST += doc/model.md
EXTRA_DIST += doc/cuda.md doc/gpu-results.md
EXTRA_DIST += doc/tier.md
EXTRA_DIST += doc/cpu-results.md
