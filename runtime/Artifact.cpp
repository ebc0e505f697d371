//===- Artifact.cpp - opening artifacts, running sessions -----------------===//
#include "kiln/Runtime/Runtime.h"

#include "ModelCall.h"
#include "ThreadPool.h"
#include "drivers/DeviceProgram.h"
#include "kiln/Runtime/Profile.h"
#include "kiln/Support/Checksum.h"
#include "kiln/Support/Error.h"
#include "kiln/Support/File.h"
#include "kiln/Support/VerifiedStamp.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <dlfcn.h>
#include <fcntl.h>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

namespace fs = std::filesystem;

namespace kiln::rt {

namespace {

template <typename T> T field(const YAML::Node &node, const char *key, const std::string &where) {
  if (!node || !node[key])
    fail(where, std::string("manifest lacks '") + key + "'");
  try {
    return node[key].as<T>();
  } catch (const YAML::Exception &) {
    fail(where, std::string("manifest field '") + key + "' has the wrong type");
  }
}

std::string hostArch() {
#if defined(__x86_64__)
  return "x86_64";
#elif defined(__aarch64__)
  return "aarch64";
#else
  return "unknown";
#endif
}

int kernelVariant(const std::string &name, const std::string &where) {
  if (name == "auto" || name.empty())
    return KILN_KERNELS_AUTO;
  if (name == "generic")
    return KILN_KERNELS_GENERIC;
  if (name == "avx2")
    return KILN_KERNELS_AVX2;
  if (name == "avx512")
    return KILN_KERNELS_AVX512;
  if (name == "avx512vnni")
    return KILN_KERNELS_AVX512VNNI;
  if (name == "avx512bf16")
    return KILN_KERNELS_AVX512BF16;
  if (name == "neon")
    return KILN_KERNELS_NEON;
  fail(where, "unknown kernel variant '" + name + "' (auto, generic, avx2, avx512, avx512vnni, avx512bf16, neon)");
}

/// An open file's bytes (read through the descriptor: what is checked is what gets loaded).
std::string readAll(int fd, const std::string &path) {
  std::string bytes;
  char buf[1 << 16];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0)
      fail(path, std::string("cannot read: ") + std::strerror(errno));
    if (n == 0)
      return bytes;
    bytes.append(buf, size_t(n));
  }
}

/// dlopen of the open file `fd`, under a name used once. dlopen returns an already loaded
/// library whose name matches, file unseen: a folder recompiled while its old model.so is
/// still loaded (a server, a notebook) would get the old code with the new weights. A unique
/// name (a symlink to /proc/self/fd/FD, removed at once) leaves glibc's identity check on the
/// file itself: the same file is shared, a different one is loaded.
void *loadLibrary(int fd, const std::string &path) {
  static std::atomic<uint64_t> counter{0};
  std::error_code ec;
  fs::path link = fs::temp_directory_path(ec) /
                  ("kiln-model-" + std::to_string(getpid()) + "-" + std::to_string(counter++) + ".so");
  ::unlink(link.c_str());
  if (!ec && ::symlink(("/proc/self/fd/" + std::to_string(fd)).c_str(), link.c_str()) == 0) {
    void *h = dlopen(link.c_str(), RTLD_NOW | RTLD_LOCAL);
    std::string error = h ? "" : dlerror();
    ::unlink(link.c_str());
    if (!h)
      fail(path, "cannot load: " + error);
    return h;
  }
  void *h = dlopen(fs::absolute(path).c_str(), RTLD_NOW | RTLD_LOCAL); // no writable temp folder
  if (!h)
    fail(path, std::string("cannot load: ") + dlerror());
  return h;
}

/// Closes a descriptor when the scope ends.
struct FdCloser {
  int fd;
  ~FdCloser() {
    if (fd >= 0)
      ::close(fd);
  }
};

/// Maps weights.bin read-only at a 2 MiB boundary, asking for huge pages. A decode step
/// streams every weight once, and with 4 KiB pages each 4 KiB is a TLB miss the hardware
/// prefetcher stops at: GPT-2 124M f32 decodes 1.3-1.7x slower from a 4 KiB-mapped page cache
/// than from a 2 MiB-mapped one (docs/performance.md). The kernel maps a file's page cache
/// with 2 MiB entries only where its folios are 2 MiB and the address is aligned; with
/// MADV_HUGEPAGE, pages read in through the mapping come in 2 MiB folios.
void *mapWeights(int fd, uint64_t bytes) {
  constexpr uint64_t kHuge = uint64_t(2) << 20, kPage = 4096;
  const uint64_t span = (bytes + kHuge + kPage - 1) / kPage * kPage;
  void *reserved = mmap(nullptr, span, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (reserved == MAP_FAILED)
    return mmap(nullptr, bytes, PROT_READ, MAP_PRIVATE, fd, 0);
  const uintptr_t base = reinterpret_cast<uintptr_t>(reserved), aligned = (base + kHuge - 1) & ~uintptr_t(kHuge - 1);
  void *p = mmap(reinterpret_cast<void *>(aligned), bytes, PROT_READ, MAP_PRIVATE | MAP_FIXED, fd, 0);
  if (p == MAP_FAILED) {
    munmap(reserved, span);
    return mmap(nullptr, bytes, PROT_READ, MAP_PRIVATE, fd, 0);
  }
  // The reservation's unused head and tail go back.
  const uintptr_t end = (aligned + bytes + kPage - 1) & ~uintptr_t(kPage - 1);
  if (aligned > base)
    munmap(reserved, aligned - base);
  if (base + span > end)
    munmap(reinterpret_cast<void *>(end), base + span - end);
#ifdef MADV_HUGEPAGE
  madvise(p, bytes, MADV_HUGEPAGE); // advice: where THP is off, nothing changes
#endif
  return p;
}
} // namespace

std::vector<std::pair<std::string, std::vector<std::string>>> listDevices() {
#ifdef KILN_HAVE_VULKAN
  std::vector<std::string> vulkan = listVulkanDevices();
#else
  std::vector<std::string> vulkan = {"vulkan: this runtime was built without the Vulkan driver (libvulkan-dev)"};
#endif
  return {{"vulkan", vulkan}, {"cuda", listCudaDevices()}};
}

// A function-try-block: a manifest node of the wrong kind (a scalar where a map belongs, text
// where a number does) throws from yaml-cpp wherever it is read; each becomes one line.
std::unique_ptr<Artifact> Artifact::open(const std::string &dir, const Options &options) try {
  std::unique_ptr<Artifact> a(new Artifact());
  a->dir_ = dir;
  std::string manifestPath = (fs::path(dir) / "manifest.yaml").string();
  if (!isDirectory(dir))
    fail(dir, "not an artifact directory");
  if (!pathExists(manifestPath))
    fail(manifestPath, "missing: not a Kiln artifact (compile one with `kiln compile`)");
  YAML::Node m;
  try {
    m = YAML::LoadFile(manifestPath);
  } catch (const YAML::Exception &e) {
    fail(manifestPath, std::string("manifest is not valid YAML: ") + e.what());
  }
  if (!m.IsMap() || !m["format"] || m["format"].as<std::string>("") != "kiln-artifact")
    fail(manifestPath, "not a Kiln artifact manifest");
  int version = field<int>(m, "format_version", manifestPath);
  if (version > kNewestFormatVersion)
    fail(manifestPath, "artifact format " + std::to_string(version) + " is newer than this runtime reads (" +
                           std::to_string(kNewestFormatVersion) + "); upgrade kiln or recompile the model");
  if (version < 1)
    fail(manifestPath, "artifact format " + std::to_string(version) + " is not supported");

  const YAML::Node target = m["target"];
  std::string targetName = field<std::string>(target, "name", manifestPath);
  if (targetName == "onnx")
    fail(manifestPath, "an onnx artifact: model.onnx is for NPU compilers (run the command in qaic-compile.args from "
                       "its folder) and ONNX Runtime (`kiln run` and `kiln eval` run it there; docs/backends/onnx.md); "
                       "this runtime runs cpu, vulkan and cuda artifacts");
  if (targetName != "cpu" && targetName != "vulkan" && targetName != "cuda")
    fail(manifestPath, "artifact is for target '" + targetName + "'; this runtime runs cpu, vulkan and cuda artifacts");
  a->target_ = targetName;
  if (targetName == "cpu") {
    std::string triple = field<std::string>(target, "triple", manifestPath);
    if (triple.rfind(hostArch(), 0) != 0)
      fail(manifestPath, "artifact was compiled for " + triple + " and cannot run on this " + hostArch() + " machine");
    for (const auto &f : target["required_features"])
      if (!hostHasFeature(f.as<std::string>()))
        fail(manifestPath, "artifact was compiled for CPU '" + field<std::string>(target, "cpu", manifestPath) +
                               "', which has " + f.as<std::string>() + "; this CPU lacks it (recompile with --cpu=generic)");
  } else if (field<int>(target, "program_version", manifestPath) != 1) {
    fail(manifestPath, "GPU program version " + target["program_version"].as<std::string>() +
                           " is newer than this runtime reads (1); upgrade kiln or recompile the model");
  }

  const YAML::Node model = m["model"];
  a->vocab_ = field<int64_t>(model, "vocab_size", manifestPath);
  a->ctxLen_ = field<int64_t>(model, "ctx_len", manifestPath);
  a->promptLen_ = field<int64_t>(model, "prompt_len", manifestPath);
  a->eos_ = model["eos_token_id"] ? field<int64_t>(model, "eos_token_id", manifestPath) : -1;
  a->layers_ = field<int64_t>(model, "n_layer", manifestPath);
  a->heads_ = field<int64_t>(model, "n_head", manifestPath);
  int64_t embd = field<int64_t>(model, "n_embd", manifestPath);
  // The config's bounds (frontend/Config.cpp), so no size below overflows (found by fuzzing:
  // n_head 0 divided by zero).
  auto inRange = [&](const char *name, int64_t value, int64_t lo, int64_t hi) {
    if (value < lo || value > hi)
      fail(manifestPath, std::string("model.") + name + " must be in " + std::to_string(lo) + ".." +
                             std::to_string(hi) + ", got " + std::to_string(value));
  };
  inRange("vocab_size", a->vocab_, 1, int64_t(1) << 24);
  inRange("ctx_len", a->ctxLen_, 1, int64_t(1) << 20);
  inRange("prompt_len", a->promptLen_, 1, a->ctxLen_);
  inRange("eos_token_id", a->eos_, -1, INT32_MAX); // may lie past the vocabulary: then never sampled
  inRange("n_layer", a->layers_, 1, 4096);
  inRange("n_embd", embd, 1, int64_t(1) << 20);
  inRange("n_head", a->heads_, 1, embd);
  if (embd % a->heads_)
    fail(manifestPath, "model.n_embd (" + std::to_string(embd) + ") is not divisible by n_head (" +
                           std::to_string(a->heads_) + ")");
  a->headDim_ = embd / a->heads_;
  // The KV caches' storage (absent in artifacts that predate kv-int8: f32).
  std::string kv = model["kv_cache"] ? field<std::string>(model, "kv_cache", manifestPath) : "f32";
  if (kv != "f32" && kv != "int8")
    fail(manifestPath, "unknown kv_cache format '" + kv + "' (f32, int8): a newer Kiln wrote it");
  // Heads per layer's caches (absent in artifacts that predate head pruning: n_head each).
  const YAML::Node cacheHeads = model["cache_heads"];
  if (cacheHeads && (!cacheHeads.IsSequence() || int64_t(cacheHeads.size()) != a->layers_))
    fail(manifestPath, "cache_heads must list one head count per layer (" + std::to_string(a->layers_) + ")");
  for (int64_t l = 0; l < a->layers_; ++l) {
    int64_t heads = a->heads_;
    if (cacheHeads) {
      heads = cacheHeads[size_t(l)].as<int64_t>(0);
      if (heads < 1 || heads > a->heads_)
        fail(manifestPath, "cache_heads[" + std::to_string(l) + "] must be in 1.." + std::to_string(a->heads_));
    }
    size_t values = size_t(heads * a->ctxLen_ * a->headDim_);
    a->cacheBytes_.push_back(kv == "f32" ? values * sizeof(float)
                                         : (values + 63) / 64 * 64 + size_t(heads * a->ctxLen_) * sizeof(float));
  }
  if (field<int64_t>(model, "batch", manifestPath) != 1)
    fail(manifestPath, "only batch 1 artifacts are supported");

  // Files: present, of the recorded size, and (model.so always, weights.bin
  // unless skipped) with the recorded checksum.
  const YAML::Node files = m["files"];
  auto checkFile = [&](const std::string &name, const std::string &bytes) {
    const YAML::Node entry = files[name];
    if (!entry)
      fail(manifestPath, "manifest does not list " + name);
    std::string path = (fs::path(dir) / name).string();
    if (uint64_t(bytes.size()) != field<uint64_t>(entry, "bytes", manifestPath))
      fail(path, "is " + std::to_string(bytes.size()) + " bytes but the manifest says " +
                     std::to_string(field<uint64_t>(entry, "bytes", manifestPath)) + " (truncated or replaced?)");
    if (checksumHex(checksum64(bytes.data(), bytes.size())) != field<std::string>(entry, "checksum", manifestPath))
      fail(path, "checksum mismatch: the file does not belong to this manifest (corrupted or replaced)");
  };
  std::string soPath = (fs::path(dir) / "model.so").string();
  FdCloser so{-1};
  if (targetName == "cpu") {
    so.fd = ::open(soPath.c_str(), O_RDONLY | O_CLOEXEC);
    if (so.fd < 0)
      fail(soPath, errno == ENOENT ? std::string("missing from the artifact")
                                   : std::string("cannot open: ") + std::strerror(errno));
    checkFile("model.so", readAll(so.fd, soPath));
  }
  else if (targetName == "vulkan")
    for (const char *name : {"program.json", "kernels.spv"})
      checkFile(name, readFile((fs::path(dir) / name).string(), "missing from the artifact"));
  else
    for (const auto &entry : files) // program.json, kernels.ptx, the cubins, ptxas-report.txt
      if (std::string name = entry.first.as<std::string>(); name != "weights.bin" && name != "vocab.json" &&
                                                              name != "merges.txt")
        checkFile(name, readFile((fs::path(dir) / name).string(), "missing from the artifact"));

  std::string weightsPath = (fs::path(dir) / "weights.bin").string();
  int fd = ::open(weightsPath.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    fail(weightsPath, "missing from the artifact");
  struct stat st;
  fstat(fd, &st);
  a->weightBytes_ = uint64_t(st.st_size);
  uint64_t expected = field<uint64_t>(files["weights.bin"], "bytes", manifestPath);
  if (a->weightBytes_ != expected) {
    ::close(fd);
    fail(weightsPath, "is " + std::to_string(a->weightBytes_) + " bytes but the manifest says " +
                          std::to_string(expected) + " (truncated or replaced?)");
  }
  if (a->weightBytes_) {
    void *p = mapWeights(fd, a->weightBytes_);
    if (p == MAP_FAILED) {
      ::close(fd);
      fail(weightsPath, std::string("cannot mmap: ") + std::strerror(errno));
    }
    a->weights_ = static_cast<const uint8_t *>(p);
  }
  ::close(fd);
  if (!options.skipWeightChecksum) {
    // Hashed once per file, not per open: a stamp naming this very file (device, inode,
    // size, mtime, ctime) and the manifest's checksum says it was (kiln/Support/VerifiedStamp.h).
    std::string checksum = field<std::string>(files["weights.bin"], "checksum", manifestPath);
    const char *verify = std::getenv("KILN_VERIFY_WEIGHTS");
    if ((verify && std::string(verify) == "always") || !verifiedStampMatches(st, checksum)) {
      if (checksumHex(checksum64(a->weights_, a->weightBytes_)) != checksum)
        fail(weightsPath, "checksum mismatch: the weights do not belong to this manifest (corrupted or replaced)");
      recordVerifiedStamp(st, checksum);
    }
  }

  // Switchable adapters: one block of weights.bin each, "none" first.
  if (const YAML::Node adapters = m["adapters"]) {
    if (targetName != "cpu" || !adapters.IsSequence() || adapters.size() < 2)
      fail(manifestPath, "adapters must list the cpu artifact's adapter blocks, none first");
    for (const auto &entry : adapters) {
      AdapterBlock b{field<std::string>(entry, "name", manifestPath), field<uint64_t>(entry, "offset", manifestPath),
                     field<uint64_t>(entry, "bytes", manifestPath)};
      if (b.offset % 64 || b.offset > a->weightBytes_ || b.bytes > a->weightBytes_ - b.offset ||
          (!a->adapterBlocks_.empty() && b.bytes != a->adapterBlocks_[0].bytes))
        fail(manifestPath, "adapter block '" + b.name + "' lies outside weights.bin or differs in size");
      if ((a->adapterBlocks_.empty()) != (b.name == "none"))
        fail(manifestPath, "the adapters list must start with none, and only once");
      a->adapterBlocks_.push_back(b);
    }
  }

  // What a decode step reads of weights.bin (kiln bench --floor): every listed weight but the
  // tables only gathered a row from (wpe; wte too when an untied lm_head exists, and wte's
  // gather copy when the tied head reads its own bf16x2 copy, --cpu-math=bf16) and the
  // adapter blocks other than the session's.
  if (const YAML::Node weights = m["weights"]; weights && weights.IsSequence()) {
    uint64_t all = 0, gathered = 0, untiedWte = 0, wteHeadCopy = 0;
    bool untied = false, headCopy = false;
    for (const auto &w : weights) {
      std::string name = field<std::string>(w, "name", manifestPath);
      uint64_t bytes = field<uint64_t>(w, "bytes", manifestPath);
      if (bytes > a->weightBytes_)
        fail(manifestPath, "weight '" + name + "' is larger than weights.bin");
      all += bytes;
      if (name.rfind("wpe.", 0) == 0)
        gathered += bytes;
      else if (name.rfind("wte.", 0) == 0) {
        untiedWte += bytes;
        if (w["layout"] && w["layout"].as<std::string>() == "bf16x2.t") {
          headCopy = true;
          wteHeadCopy += bytes;
        }
      }
      else if (name.rfind("lm_head.", 0) == 0)
        untied = true;
    }
    // Adapter blocks are listed weights too; a step reads the session's one.
    uint64_t unread = gathered + (untied ? untiedWte : headCopy ? untiedWte - wteHeadCopy : 0) +
                      (a->adapterBlocks_.empty() ? 0 : (a->adapterBlocks_.size() - 1) * a->adapterBlocks_[0].bytes);
    a->decodeReadBytes_ = all > unread ? all - unread : 0;
  } else {
    a->decodeReadBytes_ = a->weightBytes_;
  }

  // A session sizes its id and position buffers by prompt_len: every graph must fit them.
  auto checkTokenCounts = [&] {
    if (a->prefill_.tokens != a->promptLen_ || a->promptLen_ < 1 || a->decode_.tokens != 1)
      fail(manifestPath, "the prefill specialization takes " + std::to_string(a->prefill_.tokens) +
                             " tokens and decode " + std::to_string(a->decode_.tokens) +
                             ", but the model's prompt_len is " + std::to_string(a->promptLen_) +
                             " (they must be prompt_len and 1)");
  };
  if (targetName == "vulkan" || targetName == "cuda") {
    for (const auto &spec : m["specializations"]) {
      std::string name = field<std::string>(spec, "name", manifestPath);
      (name == "prefill" ? a->prefill_ : a->decode_).tokens = field<int64_t>(spec, "tokens", manifestPath);
    }
    if (!a->prefill_.tokens || !a->decode_.tokens)
      fail(manifestPath, "manifest lacks the prefill or decode specialization");
    checkTokenCounts();
    DeviceOptions deviceOptions;
    deviceOptions.device = options.device;
    if (targetName == "cuda") {
      CudaTarget cuda;
      cuda.ptx = field<std::string>(target, "ptx", manifestPath);
      cuda.ptxArch = field<std::string>(target, "ptx_arch", manifestPath);
      for (const auto &c : target["cubins"])
        cuda.cubins.push_back(c.as<std::string>());
      cuda.blockSize = field<unsigned>(target, "block_size", manifestPath);
      a->device_ = openCudaProgram(dir, a->weights_, a->weightBytes_, cuda, deviceOptions);
    } else {
#ifdef KILN_HAVE_VULKAN
      a->device_ = openVulkanProgram(dir, a->weights_, a->weightBytes_,
                                     field<uint64_t>(target, "max_binding_bytes", manifestPath), deviceOptions);
#else
      fail(dir, "a vulkan artifact, and this runtime was built without the Vulkan driver (libvulkan-dev)");
#endif
    }
    a->kernels_ = targetName;
    a->device_name_ = a->device_->device();
    return a;
  }

  a->library_ = loadLibrary(so.fd, soPath);
  auto abi = reinterpret_cast<uint32_t (*)()>(dlsym(a->library_, "kiln_model_abi_version"));
  auto init = reinterpret_cast<const char *(*)(uint64_t, int32_t)>(dlsym(a->library_, "kiln_model_init"));
  if (!abi || !init)
    fail(soPath, "is not a Kiln model library (no kiln_model_abi_version / kiln_model_init)");
  a->modelAbi_ = callModel(abi);
  if (a->modelAbi_ < KILN_MODEL_ABI_OLDEST || a->modelAbi_ > KILN_MODEL_ABI_VERSION)
    fail(soPath, "model ABI " + std::to_string(a->modelAbi_) + " is not one this runtime reads (" +
                     std::to_string(KILN_MODEL_ABI_OLDEST) + ".." + std::to_string(KILN_MODEL_ABI_VERSION) +
                     "); recompile the model");
  std::string forced = options.kernels;
  if (const char *env = std::getenv("KILN_KERNELS"); env && forced == "auto")
    forced = env;
  const char *chosen = callModel(init, hostCpuFeatures(), kernelVariant(forced, "kernels"));
  if (!chosen)
    fail(dir, "kernel variant '" + forced + "' cannot run on this CPU");
  a->kernels_ = chosen;

  for (const auto &spec : m["specializations"]) {
    Graph g;
    std::string symbol = field<std::string>(spec, "symbol", manifestPath);
    g.fn = reinterpret_cast<void (*)(void **, const void *)>(dlsym(a->library_, symbol.c_str()));
    if (!g.fn)
      fail(soPath, "lacks the graph function " + symbol);
    g.tokens = field<int64_t>(spec, "tokens", manifestPath);
    g.arenaBytes = field<uint64_t>(spec, "arena_bytes", manifestPath);
    g.batch = spec["batch"] ? field<int64_t>(spec, "batch", manifestPath) : 1;
    std::string name = field<std::string>(spec, "name", manifestPath);
    if (name == "prefill" || name == "decode") {
      if (g.batch != 1)
        fail(manifestPath, "specialization " + name + " must have batch 1");
      (name == "prefill" ? a->prefill_ : a->decode_) = g;
    } else if (name == "decode_b" + std::to_string(g.batch) && g.batch >= 2 && g.batch <= 1024 && g.tokens == 1) {
      a->batched_.push_back(g);
    } else {
      fail(manifestPath, "unknown specialization '" + name + "' (prefill, decode, decode_b<B> with batch B)");
    }
  }
  if (!a->prefill_.fn || !a->decode_.fn)
    fail(manifestPath, "manifest lacks the prefill or decode specialization");
  checkTokenCounts();
  std::sort(a->batched_.begin(), a->batched_.end(), [](const Graph &x, const Graph &y) { return x.batch < y.batch; });
  for (size_t i = 1; i < a->batched_.size(); ++i)
    if (a->batched_[i].batch == a->batched_[i - 1].batch)
      fail(manifestPath, "two decode specializations of batch " + std::to_string(a->batched_[i].batch));
  return a;
} catch (const YAML::Exception &e) {
  fail((fs::path(dir) / "manifest.yaml").string(), std::string("invalid manifest: ") + e.what());
}

Artifact::~Artifact() {
  if (weights_)
    munmap(const_cast<uint8_t *>(weights_), weightBytes_);
  // dlopen counts references: another open of the same model.so keeps it loaded.
  if (library_)
    dlclose(library_);
}

std::vector<int64_t> Artifact::decodeBatchSizes() const {
  std::vector<int64_t> sizes = {1};
  for (const Graph &g : batched_)
    sizes.push_back(g.batch);
  return sizes;
}

std::vector<std::string> Artifact::adapters() const {
  std::vector<std::string> names;
  for (size_t i = 1; i < adapterBlocks_.size(); ++i)
    names.push_back(adapterBlocks_[i].name);
  return names;
}

const Tokenizer &Artifact::tokenizer() {
  // Loaded on first use, from any thread (kiln_tokenize may be called from several at once);
  // a failed load throws and leaves the flag unset, so the next call tries again.
  std::call_once(tokenizerOnce_, [&] { tokenizer_ = Tokenizer::fromDir(dir_); });
  return *tokenizer_;
}

//===----------------------------------------------------------------------===//
// Session
//===----------------------------------------------------------------------===//

AlignedFloats alignedZeros(size_t floats) {
  size_t bytes = (floats * sizeof(float) + 63) / 64 * 64;
  // KV caches and arenas of 2 MiB or more start on a 2 MiB boundary with huge pages asked
  // for before the first touch: decode attention reads each head's rows from memory, one
  // TLB miss per 4 KiB otherwise.
  constexpr size_t kHuge = size_t(2) << 20;
  // (The size is rounded up to the alignment, as aligned_alloc wants; the rounding is never
  // touched, so it costs address space, not memory.)
  const bool huge = bytes >= kHuge;
  void *p = huge ? std::aligned_alloc(kHuge, (bytes + kHuge - 1) / kHuge * kHuge)
                 : std::aligned_alloc(64, bytes ? bytes : 64);
  if (!p)
    throw std::bad_alloc();
#ifdef MADV_HUGEPAGE
  if (huge)
    madvise(p, bytes / 4096 * 4096, MADV_HUGEPAGE); // advice: where THP is off, nothing changes
#endif
  std::memset(p, 0, bytes ? bytes : 64);
  return AlignedFloats(static_cast<float *>(p));
}

Session::Session(Artifact &artifact, int threads)
    : Session(artifact, std::make_shared<ThreadPool>(threads)) {}

Session::Session(Artifact &artifact, const Session &poolOwner) : Session(artifact, poolOwner.pool_) {}

Session::Session(Artifact &artifact, std::shared_ptr<ThreadPool> pool) : artifact_(artifact), pool_(std::move(pool)) {
  if (artifact.device_) {
    context_ = artifact.device_->context();
  } else {
    uint64_t arena = std::max(artifact.prefill_.arenaBytes, artifact.decode_.arenaBytes);
    arena_ = alignedZeros(arena / sizeof(float) + 1);
    for (int64_t i = 0; i < 2 * artifact.layers_; ++i)
      caches_.push_back(alignedZeros((artifact.cacheBytes_[size_t(i / 2)] + sizeof(float) - 1) / sizeof(float)));
  }
  logits_.assign(size_t(artifact.vocab_), 0.0f);
  if (!artifact.adapterBlocks_.empty())
    adapterBlock_ = artifact.weights_ + artifact.adapterBlocks_[0].offset;
  ids_.assign(size_t(std::max<int64_t>(artifact.promptLen_, 1)), 0);
  positions_.assign(ids_.size(), -1);
}

Session::~Session() = default;

int Session::threads() const { return pool_->threads(); }

void Session::setAdapter(const std::string &name) {
  for (const auto &b : artifact_.adapterBlocks_)
    if (b.name == name) {
      adapterBlock_ = artifact_.weights_ + b.offset;
      adapter_ = name;
      return;
    }
  if (name == "none" && artifact_.adapterBlocks_.empty())
    return;
  if (artifact_.adapterBlocks_.empty())
    fail(artifact_.dir_, "has no switchable adapters (compile with --adapters NAME=DIR,...); cannot select '" + name + "'");
  std::string known;
  for (const auto &b : artifact_.adapterBlocks_)
    known += std::string(known.empty() ? "" : ", ") + b.name;
  fail(artifact_.dir_, "has no adapter named '" + name + "' (it has: " + known + ")");
}

void Session::reset() {
  if (context_)
    context_->reset();
  for (size_t i = 0; i < caches_.size(); ++i)
    std::memset(caches_[i].get(), 0, artifact_.cacheBytes_[i / 2]);
  position_ = 0;
  haveLogits_ = false;
  sampler_.reset(); // a new sequence samples from its seed again
}

void Session::checkIds(const int32_t *ids, size_t count) {
  for (size_t i = 0; i < count; ++i)
    if (ids[i] < 0 || ids[i] >= artifact_.vocab_)
      throw Error("token id " + std::to_string(ids[i]) + " is outside the model's vocabulary of " +
                  std::to_string(artifact_.vocab_));
  if (position_ + int64_t(count) > artifact_.ctxLen_)
    throw Error(position_ == 0 ? "the prompt has " + std::to_string(count) + " tokens but the context holds " +
                                     std::to_string(artifact_.ctxLen_)
                               : "the context of " + std::to_string(artifact_.ctxLen_) + " tokens is full (" +
                                     std::to_string(position_) + " used, " + std::to_string(count) + " more asked)");
}

void Session::run(const Artifact::Graph &graph, const int32_t *ids, size_t count) {
  for (int64_t i = 0; i < graph.tokens; ++i) {
    bool real = size_t(i) < count;
    ids_[size_t(i)] = real ? ids[i] : 0;
    positions_[size_t(i)] = real ? int32_t(position_ + i) : -1;
  }
  if (context_) {
    context_->run(&graph == &artifact_.prefill_ ? "prefill" : "decode", ids_.data(), positions_.data(), graph.tokens);
    position_ += int64_t(count);
    haveLogits_ = true;
    logitsRead_ = false;
    return;
  }
  std::vector<void *> buffers = {const_cast<uint8_t *>(artifact_.weights_), arena_.get(), ids_.data(),
                                 positions_.data(), logits_.data()};
  for (auto &c : caches_)
    buffers.push_back(c.get());
  buffers.push_back(const_cast<uint8_t *>(adapterBlock_)); // read only by models with adapters
  if (profiler_) {
    KilnRuntimeContext profiled = pool_->context();
    profiled.profile_mark = &Profiler::markC;
    profiled.profiler = profiler_;
    pool_->setProfiler(profiler_);
    profiler_->beginGraph(&graph == &artifact_.prefill_ ? Profiler::Prefill : Profiler::Decode);
    callModel(graph.fn, buffers.data(), static_cast<const void *>(&profiled));
    profiler_->endGraph();
    pool_->setProfiler(nullptr);
  } else {
    callModel(graph.fn, buffers.data(), static_cast<const void *>(&pool_->context()));
  }
  position_ += int64_t(count);
  haveLogits_ = true;
}

void Session::setProfiler(Profiler *profiler) {
  if (profiler && context_)
    fail(artifact_.dir_, "profiles cpu artifacts only; this one is for " + artifact_.target_);
  if (profiler && artifact_.modelAbi_ < 3)
    fail(artifact_.dir_, "was compiled before profiling existed (model ABI " + std::to_string(artifact_.modelAbi_) +
                             "); recompile it to profile");
  profiler_ = profiler;
}

void Session::feedPrompt(const int32_t *ids, size_t count) {
  if (count == 0)
    throw Error("prefill needs at least one token");
  checkIds(ids, count);
  size_t chunk = size_t(artifact_.prefill_.tokens);
  for (size_t begin = 0; begin < count; begin += chunk)
    run(artifact_.prefill_, ids + begin, std::min(chunk, count - begin));
}

void Session::feedToken(int32_t id) {
  checkIds(&id, 1);
  run(artifact_.decode_, &id, 1);
}

const float *Session::prefill(const int32_t *ids, size_t count) {
  feedPrompt(ids, count);
  return logits();
}

const float *Session::decode(int32_t id) {
  feedToken(id);
  return logits();
}

const float *Session::logits() {
  if (context_ && haveLogits_ && !logitsRead_) {
    context_->readLogits(logits_.data());
    logitsRead_ = true;
  }
  return logits_.data();
}

template <typename Pick> int32_t Session::timedPick(Pick pick) {
  if (!profiler_)
    return pick();
  int64_t t0 = Profiler::nowNs();
  int32_t id = pick();
  profiler_->addSampling(double(Profiler::nowNs() - t0));
  return id;
}

int32_t Session::greedy() {
  if (!haveLogits_)
    throw Error("nothing to sample from: prefill first");
  if (context_) // picked on the device, by the sampler's rule
    return context_->nextId();
  return timedPick([&] { return Sampler::argmax(logits(), logits_.size()); });
}

int32_t Session::sample(const SamplingOptions &options) {
  if (!haveLogits_)
    throw Error("nothing to sample from: prefill first");
  if (!sampler_ || options.temperature != samplerOptions_.temperature || options.topK != samplerOptions_.topK ||
      options.topP != samplerOptions_.topP || options.seed != samplerOptions_.seed) {
    sampler_ = std::make_unique<Sampler>(options); // validates the options
    samplerOptions_ = options;
  }
  if (options.temperature == 0.0) // a GPU picks it on the device and reads back one id
    return greedy();
  return timedPick([&] { return sampler_->sample(logits(), logits_.size()); });
}

} // namespace kiln::rt
