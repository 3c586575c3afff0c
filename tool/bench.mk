# tool/bench.mk: more sources of the tool for this area (tool_kvreviver_SOURCES += ...)
tool_kvreviver_SOURCES += tool/soak.c tool/soak.h
