//===- BadAbiPlugin.cpp - a backend plugin built for another ABI ----------===//
// Loading it must fail with a message naming both ABI versions.
#include "kiln/Backend/Backend.h"

extern "C" kiln::BackendPluginInfo kilnGetBackendPluginInfo() {
  return {kiln::kBackendPluginABIVersion + 998, "bad-abi", nullptr};
}
