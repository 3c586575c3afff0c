# tool/conformance/local.mk: the conformance kit, `kvreviver vectors` and
# `kvreviver validate` (doc/porting.md).
TOOL_CONFORMANCE_LIB = tool/conformance/libconformance.a
noinst_LIBRARIES += tool/conformance/libconformance.a
tool_conformance_libconformance_a_SOURCES = tool/conformance/vectors.h \
	tool/conformance/vectors_write.c tool/conformance/vectors_gen.c \
	tool/conformance/vectors_scripts.c tool/conformance/validate.c lib/tolerance.h
tool_conformance_libconformance_a_CPPFLAGS = $(TOOL_CPPFLAGS)
