# Writes OUT: a C++ initializer list {"file.mlir", R"kiln(...)kiln"} of the kernel templates in FILES.
set(text "// Generated from backends/gpu/kernels by EmbedKernels.cmake.\n")
string(REPLACE "," ";" FILES "${FILES}")
foreach(f ${FILES})
  file(READ ${f} body)
  get_filename_component(name ${f} NAME)
  string(APPEND text "{\"${name}\", R\"kiln(${body})kiln\"},\n")
endforeach()
file(WRITE ${OUT} "${text}")
