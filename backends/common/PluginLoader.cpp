//===- PluginLoader.cpp - finding and loading backend plugins -------------===//
#include "kiln/Backend/Backend.h"

#include "kiln/Support/Error.h"

#include <dlfcn.h>
#include <algorithm>
#include <filesystem>

namespace fs = std::filesystem;

namespace kiln {

std::unique_ptr<TargetBackend> loadBackendPlugin(const std::string &path) {
  if (!fs::exists(path))
    fail(path, "backend plugin not found");
  // Kept loaded for the life of the process: the backend's code lives in it.
  void *handle = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (!handle)
    fail(path, std::string("cannot load backend plugin: ") + dlerror());
  auto entry = reinterpret_cast<BackendPluginInfo (*)()>(dlsym(handle, "kilnGetBackendPluginInfo"));
  if (!entry)
    fail(path, "not a kiln backend plugin: it does not export kilnGetBackendPluginInfo");
  BackendPluginInfo info = entry();
  if (info.abiVersion != kBackendPluginABIVersion)
    fail(path, "backend plugin ABI version " + std::to_string(info.abiVersion) + " does not match this kiln's " +
                   std::to_string(kBackendPluginABIVersion) + "; rebuild the plugin against this kiln");
  if (!info.create)
    fail(path, "backend plugin has no create function");
  return std::unique_ptr<TargetBackend>(info.create());
}

std::string backendPluginDir() {
  if (const char *env = std::getenv("KILN_BACKEND_PLUGIN_DIR"))
    return env;
  std::error_code ec;
  fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  return (exe.parent_path().parent_path() / "lib" / "kiln" / "backends").string();
}

std::vector<std::string> listBackendPlugins() {
  std::vector<std::string> out;
  std::error_code ec;
  for (const auto &e : fs::directory_iterator(backendPluginDir(), ec)) {
    std::string f = e.path().filename().string();
    if (f.rfind("libkiln-backend-", 0) == 0 && e.path().extension() == ".so")
      out.push_back(e.path().string());
  }
  std::sort(out.begin(), out.end());
  return out;
}

std::unique_ptr<TargetBackend> loadBackendByName(const std::string &name) {
  fs::path path = fs::path(backendPluginDir()) / ("libkiln-backend-" + name + ".so");
  if (!fs::exists(path)) {
    std::string known;
    for (const auto &p : listBackendPlugins()) {
      std::string f = fs::path(p).stem().string();
      known += (known.empty() ? "" : ", ") + f.substr(std::string("libkiln-backend-").size());
    }
    throw Error("unknown target '" + name + "' (found: " + (known.empty() ? "none" : known) + " in " +
                backendPluginDir() + ")");
  }
  return loadBackendPlugin(path.string());
}

} // namespace kiln
