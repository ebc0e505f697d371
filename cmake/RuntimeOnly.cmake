# KILN_RUNTIME_ONLY: the runtime, the checkpoint library and the kiln driver, without MLIR,
# LLVM or the test tools (the AArch64 cross build, cmake/aarch64-linux-gnu.cmake). Each
# library the runtime links is found by name, as an imported target of the name the full
# build's find_package gives it: a cross sysroot has the libraries but not the host's CMake
# package files.
find_package(Threads REQUIRED)
function(kiln_imported_library target library header)
  find_library(KILN_LIB_${library} NAMES ${library} REQUIRED)
  find_path(KILN_INC_${library} ${header} REQUIRED)
  add_library(${target} SHARED IMPORTED GLOBAL)
  set_target_properties(${target} PROPERTIES IMPORTED_LOCATION ${KILN_LIB_${library}}
                                             INTERFACE_INCLUDE_DIRECTORIES ${KILN_INC_${library}})
endfunction()
kiln_imported_library(yaml-cpp yaml-cpp yaml-cpp/yaml.h)
kiln_imported_library(ICU::uc icuuc unicode/uchar.h)
kiln_imported_library(KilnHttplib cpp-httplib httplib.h)
# httplib.h includes OpenSSL's headers, whose configuration headers are per architecture.
find_path(KILN_INC_opensslconf openssl/opensslconf.h REQUIRED)
find_path(KILN_INC_openssl openssl/ssl.h REQUIRED)
set_target_properties(KilnHttplib PROPERTIES INTERFACE_COMPILE_DEFINITIONS
  "CPPHTTPLIB_OPENSSL_SUPPORT;CPPHTTPLIB_ZLIB_SUPPORT;CPPHTTPLIB_BROTLI_SUPPORT"
  INTERFACE_INCLUDE_DIRECTORIES "${KILN_INC_cpp-httplib};${KILN_INC_openssl};${KILN_INC_opensslconf}")
find_path(KILN_INC_nlohmann nlohmann/json.hpp REQUIRED)
add_library(nlohmann_json::nlohmann_json INTERFACE IMPORTED GLOBAL)
set_target_properties(nlohmann_json::nlohmann_json PROPERTIES INTERFACE_INCLUDE_DIRECTORIES ${KILN_INC_nlohmann})

include_directories(${CMAKE_SOURCE_DIR}/include ${CMAKE_BINARY_DIR}/include)
add_subdirectory(runtime)
add_subdirectory(frontend)
add_subdirectory(tools)
