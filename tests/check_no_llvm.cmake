# Fails when BINARY (linked by LINK_COMMAND_FILE, CMake's link.txt for it) uses LLVM in any
# way we can see: an LLVM library on the link line, a shared LLVM library at run time, LLVM
# symbols, or LLVM's own strings (which survive stripping and static linking).
# tests/CMakeLists.txt also runs this on procsnap-analyze and expects it to fail, so the check
# is known to catch a binary that does link LLVM.
if(LINK_COMMAND_FILE)
  file(READ "${LINK_COMMAND_FILE}" link_command)
  if(link_command MATCHES "[Ll][Ll][Vv][Mm]")
    message(FATAL_ERROR "${BINARY}'s link line names LLVM:\n${link_command}")
  endif()
endif()
execute_process(COMMAND ldd ${BINARY} OUTPUT_VARIABLE deps RESULT_VARIABLE rc)
if(deps MATCHES "libLLVM")
  message(FATAL_ERROR "${BINARY} links a shared LLVM library:\n${deps}")
endif()
execute_process(COMMAND nm -C ${BINARY} OUTPUT_VARIABLE symbols ERROR_QUIET)
if(symbols MATCHES "llvm::")
  message(FATAL_ERROR "${BINARY} contains LLVM symbols")
endif()
execute_process(COMMAND strings -n 8 ${BINARY} OUTPUT_VARIABLE text ERROR_QUIET)
if(text MATCHES "LLVM ERROR|llvm::|LLVM_SYMBOLIZER")
  message(FATAL_ERROR "${BINARY} contains LLVM's strings")
endif()
message(STATUS "${BINARY}: no LLVM")
