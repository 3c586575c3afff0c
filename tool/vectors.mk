# tool/vectors.mk: `kvreviver vectors` and `kvreviver validate` (issue 5).
tool_kvreviver_SOURCES += tool/vectors.h tool/vectors_write.c tool/vectors_gen.c \
	tool/vectors_scripts.c tool/validate.c lib/tolerance.h
