# doc/local.mk: the spec and guides travel in the tarball and are installed
# in $(docdir) (PREFIX/share/doc/kvreviver), where lib/kvreviver.h says
# they are.  doc/README.md lists every page; tests/doc-index.sh checks that
# it and this list name every doc/*.md.
dist_doc_DATA = doc/README.md
dist_doc_DATA += doc/spec.md doc/head.md doc/elem.md doc/hash.md doc/importance.md \
	doc/sketch.md doc/reconstruct.md doc/budget.md doc/prefill.md doc/attend.md \
	doc/errors.md doc/tolerance.md doc/bound.md doc/moment.md doc/quant.md
dist_doc_DATA += doc/porting.md
dist_doc_DATA += doc/eval.md doc/methods.md doc/results.md
dist_doc_DATA += doc/files.md
dist_doc_DATA += doc/model.md
dist_doc_DATA += doc/cuda.md doc/gpu-results.md
dist_doc_DATA += doc/tier.md
dist_doc_DATA += doc/cpu-results.md
dist_doc_DATA += doc/python.md
