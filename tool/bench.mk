# tool/bench.mk: more sources of the tool for this area (tool_kvreviver_SOURCES += ...)
