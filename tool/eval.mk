# tool/eval.mk: more sources of the tool for this area (tool_kvreviver_SOURCES += ...)
tool_kvreviver_SOURCES += tool/report.c tool/report.h
