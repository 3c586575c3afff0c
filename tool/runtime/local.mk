# tool/runtime/local.mk: the llama-architecture runtime (doc/model.md):
# loaders, forward pass through a kvr_cache, tokenizer.
TOOL_RUNTIME_LIB = tool/runtime/libruntime.a
noinst_LIBRARIES += tool/runtime/libruntime.a
tool_runtime_libruntime_a_SOURCES = tool/runtime/loader.h tool/runtime/loader.c \
	tool/runtime/llama2c.c tool/runtime/gguf.c tool/runtime/dequant.h tool/runtime/dequant.c tool/runtime/model.h tool/runtime/model.c \
	tool/runtime/bpe.h tool/runtime/bpe.c tool/runtime/spm.c tool/runtime/unicode-table.h
EXTRA_DIST += tool/runtime/unicode-gen.py
tool_runtime_libruntime_a_CPPFLAGS = $(TOOL_CPPFLAGS)
# gsl/gsl_cblas.h: the BLAS interface (configure links OpenBLAS behind it)
tool_runtime_libruntime_a_CFLAGS = $(AM_CFLAGS) $(GSL_CFLAGS)
