# tool/bench.mk: more sources of the tool for this area (tool_kvreviver_SOURCES += ...)
tool_kvreviver_SOURCES += tool/soak.c tool/soak.h
# tool/cmd_bench.c (in tool/local.mk) includes cuda/kvr_cuda.h when CUDA is built.
