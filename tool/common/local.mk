# tool/common/local.mk: the tool's message lines and output files, shared by
# every room.
TOOL_COMMON_LIB = tool/common/libmessage.a
noinst_LIBRARIES += tool/common/libmessage.a
tool_common_libmessage_a_SOURCES = tool/common/message.c tool/common/message.h \
	tool/common/output.c tool/common/output.h
tool_common_libmessage_a_CPPFLAGS = $(TOOL_CPPFLAGS)
