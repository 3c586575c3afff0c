# tool/vectors.mk: `kvreviver vectors` and `kvreviver validate` (issue 5).
# tool/tol_fallback.c is TEMPORARY: it stands in for lib/tolerance.c (the
# spec area's); drop it here once lib/tolerance.c is in the library.
tool_kvreviver_SOURCES += tool/vectors.h tool/vectors_write.c tool/vectors_gen.c \
	tool/vectors_scripts.c tool/validate.c tool/tol_fallback.c lib/tolerance.h
