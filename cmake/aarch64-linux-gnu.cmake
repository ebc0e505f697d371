# Cross-compiling the MLIR-free runtime and kiln driver for AArch64 Linux (scripts/aarch64.sh):
# Debian's g++-aarch64-linux-gnu (its libc in /usr/aarch64-linux-gnu) and a sysroot of the arm64
# libraries the runtime links, unpacked from Debian's packages (KILN_AARCH64_SYSROOT), whose
# arch-independent headers are links to the host's.
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)
set(CMAKE_C_COMPILER aarch64-linux-gnu-gcc)
set(CMAKE_CXX_COMPILER aarch64-linux-gnu-g++)
list(APPEND CMAKE_TRY_COMPILE_PLATFORM_VARIABLES KILN_AARCH64_SYSROOT) # for CMake's compiler checks
if(NOT KILN_AARCH64_SYSROOT)
  message(FATAL_ERROR "set KILN_AARCH64_SYSROOT (scripts/aarch64.sh makes one)")
endif()
set(CMAKE_FIND_ROOT_PATH /usr/aarch64-linux-gnu ${KILN_AARCH64_SYSROOT})
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY)
set(CMAKE_LIBRARY_ARCHITECTURE aarch64-linux-gnu)
# The unpacked libraries' own dependencies (libssl for cpp-httplib, ...) resolve at link time here.
set(KILN_AARCH64_RPATH_LINK
  "-Wl,-rpath-link,${KILN_AARCH64_SYSROOT}/usr/lib/aarch64-linux-gnu -Wl,-rpath-link,${KILN_AARCH64_SYSROOT}/lib/aarch64-linux-gnu")
set(CMAKE_EXE_LINKER_FLAGS_INIT "${KILN_AARCH64_RPATH_LINK}")
set(CMAKE_SHARED_LINKER_FLAGS_INIT "${KILN_AARCH64_RPATH_LINK}")
