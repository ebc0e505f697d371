//===- KernelLibrary.cpp - the GPU kernels, written once in MLIR ----------===//
#include "KernelLibrary.h"

#include "kiln/Support/Error.h"

#include <regex>
#include <sstream>

namespace kiln::gpu {

namespace {
const std::map<std::string, std::string> &sources() {
  static const std::map<std::string, std::string> files = {
#include "KernelSources.inc"
  };
  return files;
}

/// The tree reduction (arith `op`: addf, maximumf) of buf[0 .. wg) into buf[0], every thread
/// taking part.
std::string tree(const std::string &buf, const std::string &op, int64_t wg, int &counter) {
  std::ostringstream os;
  std::string type = "memref<" + std::to_string(wg) + "xf32, 3>";
  for (int64_t stride = wg / 2; stride >= 1; stride /= 2) {
    std::string p = "%tree" + std::to_string(counter++);
    os << "gpu.barrier\n"
       << "  " << p << "_c = arith.constant " << stride << " : index\n"
       << "  " << p << "_in = arith.cmpi ult, %tid, " << p << "_c : index\n"
       << "  scf.if " << p << "_in {\n"
       << "    " << p << "_j = arith.addi %tid, " << p << "_c : index\n"
       << "    " << p << "_a = memref.load " << buf << "[%tid] : " << type << "\n"
       << "    " << p << "_b = memref.load " << buf << "[" << p << "_j] : " << type << "\n"
       << "    " << p << "_s = arith." << op << " " << p << "_a, " << p << "_b : f32\n"
       << "    memref.store " << p << "_s, " << buf << "[%tid] : " << type << "\n"
       << "  }\n  ";
  }
  os << "gpu.barrier";
  return os.str();
}
/// The (value, lowest index) reduction of %vals / %idxs [0 .. wg) into slot 0: at each halving
/// stride, a slot takes its partner's pair when it is larger, or equal with a lower index.
std::string argmaxTree(int64_t wg) {
  std::string vt = "memref<" + std::to_string(wg) + "xf32, 3>", it = "memref<" + std::to_string(wg) + "xi32, 3>";
  std::ostringstream os;
  os << "gpu.barrier\n"
     << "  %am_levels = arith.constant " << __builtin_ctzll(uint64_t(wg)) << " : index\n"
     << "  scf.for %am_l = %c0 to %am_levels step %c1 {\n"
     << "    %am_l1 = arith.addi %am_l, %c1 : index\n"
     << "    %am_stride = arith.shrui %cwg, %am_l1 : index\n"
     << "    %am_in = arith.cmpi ult, %tid, %am_stride : index\n"
     << "    scf.if %am_in {\n"
     << "      %am_j = arith.addi %tid, %am_stride : index\n"
     << "      %am_a = memref.load %vals[%tid] : " << vt << "\n"
     << "      %am_ai = memref.load %idxs[%tid] : " << it << "\n"
     << "      %am_b = memref.load %vals[%am_j] : " << vt << "\n"
     << "      %am_bi = memref.load %idxs[%am_j] : " << it << "\n"
     << "      %am_gt = arith.cmpf ogt, %am_b, %am_a : f32\n"
     << "      %am_eq = arith.cmpf oeq, %am_b, %am_a : f32\n"
     << "      %am_lower = arith.cmpi slt, %am_bi, %am_ai : i32\n"
     << "      %am_tie = arith.andi %am_eq, %am_lower : i1\n"
     << "      %am_take = arith.ori %am_gt, %am_tie : i1\n"
     << "      %am_v = arith.select %am_take, %am_b, %am_a : f32\n"
     << "      %am_i = arith.select %am_take, %am_bi, %am_ai : i32\n"
     << "      memref.store %am_v, %vals[%tid] : " << vt << "\n"
     << "      memref.store %am_i, %idxs[%tid] : " << it << "\n"
     << "    }\n"
     << "    gpu.barrier\n"
     << "  }";
  return os.str();
}

/// The parameter `key` of an instance (throws when unset).
std::string param(const std::map<std::string, std::string> &params, const std::string &key, const std::string &file) {
  auto it = params.find(key);
  if (it == params.end())
    throw Error("gpu: kernel template " + file + " needs parameter " + key);
  return it->second;
}

/// {{WARGS}}: the weight operand's arguments in its storage format W_FORMAT: f32 values,
/// 16-bit floats two to a 32-bit word (f16, bf16), or int8 / int4 values four / eight to a
/// word with f32 scales and zero points per [channel][group] (q8, q4).
std::string weightArgs(const std::string &format) {
  if (format == "f32")
    return "%w: memref<?xf32>";
  if (format == "f16" || format == "bf16")
    return "%w: memref<?xi32>";
  if (format == "q8" || format == "q4")
    return "%w: memref<?xi32>, %w_scale: memref<?xf32>, %w_zero: memref<?xf32>";
  throw Error("gpu: unknown weight format '" + format + "' (f32, f16, bf16, q8, q4)");
}

/// Emits lane `lane` (an index) of the 32-bit word `memref[word]`, which holds 32 / `bits`
/// values, as an i32 (sign-extended when `isSigned`); returns its SSA name.
std::string unpackLane(std::ostream &os, const std::string &p, const std::string &memref, const std::string &word,
                       const std::string &lane, int bits, bool isSigned) {
  os << p << "_bits = arith.constant " << bits << " : i32\n  "
     << p << "_mask = arith.constant " << ((1 << bits) - 1) << " : i32\n  "
     << p << "_word = memref.load " << memref << "[" << word << "] : memref<?xi32>\n  "
     << p << "_lane32 = arith.index_cast " << lane << " : index to i32\n  "
     << p << "_shift = arith.muli " << p << "_lane32, " << p << "_bits : i32\n  "
     << p << "_sh = arith.shrui " << p << "_word, " << p << "_shift : i32\n  "
     << p << "_u = arith.andi " << p << "_sh, " << p << "_mask : i32\n  ";
  if (!isSigned)
    return p + "_u";
  // (u ^ half) - half: the two's-complement value of the lane's bits.
  os << p << "_half = arith.constant " << (1 << (bits - 1)) << " : i32\n  "
     << p << "_x = arith.xori " << p << "_u, " << p << "_half : i32\n  "
     << p << "_q = arith.subi " << p << "_x, " << p << "_half : i32\n  ";
  return p + "_q";
}

/// {{WLOAD %dst %r %c}}: element (r, c) of the weight (a row-major matrix of W_WORDS words
/// per row) as f32, decoded in registers exactly as the reference dequantizes it:
/// (q - zero) * scale with channel = (W_AXIS == 0 ? c : r) and group = (W_AXIS == 0 ? r : c) /
/// W_GROUP; f16 widened with integer operations (no Float16 capability needed).
std::string weightLoad(const std::string &dst, const std::string &r, const std::string &c,
                       const std::map<std::string, std::string> &params, const std::string &file, int &counter) {
  std::string format = param(params, "W_FORMAT", file);
  std::string p = "%wl" + std::to_string(counter++);
  std::ostringstream os;
  auto cidx = [&](const std::string &name, const std::string &value) {
    os << p << "_" << name << " = arith.constant " << value << " : index\n  ";
  };
  auto ci32 = [&](const std::string &name, const std::string &value) {
    os << p << "_" << name << " = arith.constant " << value << " : i32\n  ";
  };
  if (format == "f32") {
    cidx("cols", param(params, "W_COLS", file));
    os << p << "_row = arith.muli " << r << ", " << p << "_cols : index\n  "
       << p << "_i = arith.addi " << p << "_row, " << c << " : index\n  "
       << dst << " = memref.load %w[" << p << "_i] : memref<?xf32>";
    return os.str();
  }
  int perWord = format == "q8" ? 4 : format == "q4" ? 8 : 2, bits = 32 / perWord;
  // q8 / q4: signed values sign-extended; asymmetric int4 is 0..15.
  bool isSigned = format == "q8" || (format == "q4" && param(params, "W_SIGNED", file) == "true");
  cidx("words", param(params, "W_WORDS", file));
  cidx("per", std::to_string(perWord));
  os << p << "_row = arith.muli " << r << ", " << p << "_words : index\n  "
     << p << "_wc = arith.divui " << c << ", " << p << "_per : index\n  "
     << p << "_i = arith.addi " << p << "_row, " << p << "_wc : index\n  "
     << p << "_lane = arith.remui " << c << ", " << p << "_per : index\n  ";
  std::string q = unpackLane(os, p, "%w", p + "_i", p + "_lane", bits, isSigned);
  if (format == "bf16") {
    ci32("c16", "16");
    os << p << "_f = arith.shli " << p << "_u, " << p << "_c16 : i32\n  "
       << dst << " = arith.bitcast " << p << "_f : i32 to f32";
    return os.str();
  }
  if (format == "f16") {
    // sign << 16 | (exp + 112) << 23 | mant << 13 for normal values; exp 31: inf / NaN;
    // exp 0: mant * 2^-24 (zero and subnormals), signed.
    ci32("c10", "10");
    ci32("c13", "13");
    ci32("c16", "16");
    ci32("c23", "23");
    ci32("c31", "31");
    ci32("c0", "0");
    ci32("c112", "112");
    ci32("m3ff", "1023");
    ci32("m8000", "32768");
    ci32("inf", "2139095040");
    os << p << "_sign0 = arith.andi " << p << "_u, " << p << "_m8000 : i32\n  "
       << p << "_sign = arith.shli " << p << "_sign0, " << p << "_c16 : i32\n  "
       << p << "_e0 = arith.shrui " << p << "_u, " << p << "_c10 : i32\n  "
       << p << "_e = arith.andi " << p << "_e0, " << p << "_c31 : i32\n  "
       << p << "_m = arith.andi " << p << "_u, " << p << "_m3ff : i32\n  "
       << p << "_m23 = arith.shli " << p << "_m, " << p << "_c13 : i32\n  "
       << p << "_eb = arith.addi " << p << "_e, " << p << "_c112 : i32\n  "
       << p << "_e23 = arith.shli " << p << "_eb, " << p << "_c23 : i32\n  "
       << p << "_n0 = arith.ori " << p << "_e23, " << p << "_m23 : i32\n  "
       << p << "_normal = arith.ori " << p << "_n0, " << p << "_sign : i32\n  "
       << p << "_s0 = arith.ori " << p << "_inf, " << p << "_m23 : i32\n  "
       << p << "_special = arith.ori " << p << "_s0, " << p << "_sign : i32\n  "
       << p << "_mf = arith.uitofp " << p << "_m : i32 to f32\n  "
       << p << "_tiny = arith.constant 5.9604644775390625e-08 : f32\n  "
       << p << "_small0 = arith.mulf " << p << "_mf, " << p << "_tiny : f32\n  "
       << p << "_small1 = arith.bitcast " << p << "_small0 : f32 to i32\n  "
       << p << "_small = arith.ori " << p << "_small1, " << p << "_sign : i32\n  "
       << p << "_iszero = arith.cmpi eq, " << p << "_e, " << p << "_c0 : i32\n  "
       << p << "_ismax = arith.cmpi eq, " << p << "_e, " << p << "_c31 : i32\n  "
       << p << "_b0 = arith.select " << p << "_ismax, " << p << "_special, " << p << "_normal : i32\n  "
       << p << "_b = arith.select " << p << "_iszero, " << p << "_small, " << p << "_b0 : i32\n  "
       << dst << " = arith.bitcast " << p << "_b : i32 to f32";
    return os.str();
  }
  bool axis0 = param(params, "W_AXIS", file) == "0";
  cidx("groups", param(params, "W_GROUPS", file));
  cidx("group", param(params, "W_GROUP", file));
  os << p << "_ch = arith.muli " << (axis0 ? c : r) << ", " << p << "_groups : index\n  "
     << p << "_g = arith.divui " << (axis0 ? r : c) << ", " << p << "_group : index\n  "
     << p << "_s = arith.addi " << p << "_ch, " << p << "_g : index\n  "
     << p << "_scale = memref.load %w_scale[" << p << "_s] : memref<?xf32>\n  "
     << p << "_zero = memref.load %w_zero[" << p << "_s] : memref<?xf32>\n  "
     << p << "_qf = arith.sitofp " << q << " : i32 to f32\n  "
     << p << "_c = arith.subf " << p << "_qf, " << p << "_zero : f32\n  "
     << dst << " = arith.mulf " << p << "_c, " << p << "_scale : f32";
  return os.str();
}

/// {{GELU %dst %v}}: GELU of %v by parameter GELU: `tanh` (Hugging Face's gelu_new, the
/// reference's formula), `erf` (the exact GELU, erf by Abramowitz-Stegun 7.1.26: absolute error
/// below 1.5e-7, arith only, so every target lowers it), or `none` (the value itself).
std::string geluOps(const std::string &dst, const std::string &v, const std::string &kind, int &counter) {
  std::string p = "%ge" + std::to_string(counter++);
  std::ostringstream os;
  auto c = [&](const std::string &name, const char *value) {
    os << p << "_" << name << " = arith.constant " << value << " : f32\n  ";
  };
  if (kind == "none") {
    c("nz", "-0.0");
    os << dst << " = arith.addf " << v << ", " << p << "_nz : f32";
    return os.str();
  }
  c("half", "0.5");
  c("one", "1.0");
  if (kind == "tanh") {
    c("c", "0.7978845608028654");
    c("k", "0.044715");
    os << p << "_v2 = arith.mulf " << v << ", " << v << " : f32\n  "
       << p << "_v3 = arith.mulf " << p << "_v2, " << v << " : f32\n  "
       << p << "_in = math.fma " << p << "_v3, " << p << "_k, " << v << " : f32\n  "
       << p << "_t = arith.mulf " << p << "_in, " << p << "_c : f32\n  "
       << p << "_th = math.tanh " << p << "_t : f32\n  "
       << p << "_pl = arith.addf " << p << "_th, " << p << "_one : f32\n  "
       << p << "_hv = arith.mulf " << v << ", " << p << "_half : f32\n  "
       << dst << " = arith.mulf " << p << "_hv, " << p << "_pl : f32";
    return os.str();
  }
  if (kind != "erf")
    throw Error("gpu: unknown GELU form '" + kind + "' (none, tanh, erf)");
  c("rs2", "0.7071067811865476");
  c("p", "0.3275911");
  c("a1", "0.254829592");
  c("a2", "-0.284496736");
  c("a3", "1.421413741");
  c("a4", "-1.453152027");
  c("a5", "1.061405429");
  c("zero", "0.0");
  os << p << "_z = arith.mulf " << v << ", " << p << "_rs2 : f32\n  "
     << p << "_az = math.absf " << p << "_z : f32\n  "
     << p << "_den = math.fma " << p << "_p, " << p << "_az, " << p << "_one : f32\n  "
     << p << "_t = arith.divf " << p << "_one, " << p << "_den : f32\n  "
     << p << "_q4 = math.fma " << p << "_a5, " << p << "_t, " << p << "_a4 : f32\n  "
     << p << "_q3 = math.fma " << p << "_q4, " << p << "_t, " << p << "_a3 : f32\n  "
     << p << "_q2 = math.fma " << p << "_q3, " << p << "_t, " << p << "_a2 : f32\n  "
     << p << "_q1 = math.fma " << p << "_q2, " << p << "_t, " << p << "_a1 : f32\n  "
     << p << "_poly = arith.mulf " << p << "_q1, " << p << "_t : f32\n  "
     << p << "_z2 = arith.mulf " << p << "_az, " << p << "_az : f32\n  "
     << p << "_nz2 = arith.subf " << p << "_zero, " << p << "_z2 : f32\n  "
     << p << "_e = math.exp " << p << "_nz2 : f32\n  "
     << p << "_pe = arith.mulf " << p << "_poly, " << p << "_e : f32\n  "
     << p << "_erfa = arith.subf " << p << "_one, " << p << "_pe : f32\n  "
     << p << "_neg = arith.cmpf olt, " << p << "_z, " << p << "_zero : f32\n  "
     << p << "_nerf = arith.subf " << p << "_zero, " << p << "_erfa : f32\n  "
     << p << "_erf = arith.select " << p << "_neg, " << p << "_nerf, " << p << "_erfa : f32\n  "
     << p << "_pl = arith.addf " << p << "_erf, " << p << "_one : f32\n  "
     << p << "_hv = arith.mulf " << v << ", " << p << "_half : f32\n  "
     << dst << " = arith.mulf " << p << "_hv, " << p << "_pl : f32";
  return os.str();
}

/// {{KVARGS %c}}: a KV cache argument in format KV: `f32` values, or `q8`: int8 values four
/// to a 32-bit word with an f32 scale per head and position (%c_scale).
std::string kvArgs(const std::string &name, const std::string &format) {
  if (format == "f32")
    return name + ": memref<?xf32>";
  if (format == "q8")
    return name + ": memref<?xi32>, " + name + "_scale: memref<?xf32>";
  throw Error("gpu: unknown KV cache format '" + format + "' (f32, q8)");
}

/// {{KVLOAD %dst %c %slot %d}}: element d of cache row `slot` (= h * C + position) as f32:
/// q * scale[slot] for q8 (the value the reference stores), as stored for f32.
std::string kvLoad(const std::string &dst, const std::string &cache, const std::string &slot, const std::string &d,
                   const std::string &format, const std::string &D, int &counter) {
  std::string p = "%kv" + std::to_string(counter++);
  std::ostringstream os;
  os << p << "_D = arith.constant " << D << " : index\n  "
     << p << "_row = arith.muli " << slot << ", " << p << "_D : index\n  "
     << p << "_e = arith.addi " << p << "_row, " << d << " : index\n  ";
  if (format == "f32") {
    os << dst << " = memref.load " << cache << "[" << p << "_e] : memref<?xf32>";
    return os.str();
  }
  os << p << "_c4 = arith.constant 4 : index\n  "
     << p << "_w = arith.divui " << p << "_e, " << p << "_c4 : index\n  "
     << p << "_lane = arith.remui " << p << "_e, " << p << "_c4 : index\n  ";
  std::string q = unpackLane(os, p, cache, p + "_w", p + "_lane", 8, true);
  os << p << "_qf = arith.sitofp " << q << " : i32 to f32\n  "
     << p << "_s = memref.load " << cache << "_scale[" << slot << "] : memref<?xf32>\n  "
     << dst << " = arith.mulf " << p << "_qf, " << p << "_s : f32";
  return os.str();
}
} // namespace

std::string Profile::spirvTargetEnv() const {
  std::string caps = "Shader, GroupNonUniform";
  if (shuffles)
    caps += ", GroupNonUniformShuffle";
  if (f16)
    caps += ", Float16, StorageBuffer16BitAccess";
  return "#spirv.target_env<#spirv.vce<v1.3, [" + caps +
         "], [SPV_KHR_storage_buffer_storage_class" + std::string(f16 ? ", SPV_KHR_16bit_storage" : "") +
         "]>, #spirv.resource_limits<max_compute_workgroup_size = [1024, 1024, 64], subgroup_size = " +
         std::to_string(subgroupSize) + ">>";
}

const Profile &profile(const std::string &name) {
  static const std::map<std::string, Profile> profiles = {
      {"lavapipe", {"lavapipe", "vulkan", 8, false, false, int64_t(1) << 27, 64}},
      {"desktop", {"desktop", "vulkan", 32, true, true, int64_t(1) << 31, 128}},
      {"cuda", {"cuda", "cuda", 32, true, true, int64_t(1) << 31, 128}},
  };
  auto it = profiles.find(name);
  if (it == profiles.end())
    throw Error("gpu: unknown capability profile '" + name + "' (lavapipe, desktop, cuda)");
  return it->second;
}

std::string kernelModule(const std::vector<KernelInstance> &instances, const Profile &profile) {
  std::ostringstream os;
  os << "module attributes {gpu.container_module";
  if (profile.api == "vulkan")
    os << ", spirv.target_env = " << profile.spirvTargetEnv();
  os << "} {\ngpu.module @kernels {\n";
  int counter = 0;
  for (const auto &inst : instances) {
    auto it = sources().find(inst.file);
    if (it == sources().end())
      throw Error("gpu: no kernel template '" + inst.file + "'");
    std::string text = it->second;
    if (!inst.function.empty()) {
      // The function runs from its `gpu.func @name(` line to the first `}` in column 0.
      size_t begin = text.find("gpu.func @" + inst.function + "(");
      size_t end = begin == std::string::npos ? begin : text.find("\n}", begin);
      if (end == std::string::npos)
        throw Error("gpu: kernel template " + inst.file + " has no gpu.func @" + inst.function);
      text = text.substr(begin, end + 2 - begin);
    }
    std::map<std::string, std::string> params = inst.params;
    params["WG"] = std::to_string(profile.workgroupSize);
    // Macros: {{NAME %a %b ...}} -> its expansion from the SSA names given.
    auto expand = [&](const std::string &name, int operands, const auto &with) {
      std::string pattern = R"(\{\{)" + name;
      for (int i = 0; i < operands; ++i)
        pattern += R"( (%[A-Za-z0-9_]+))";
      std::regex re(pattern + R"(\}\})");
      std::smatch m;
      while (std::regex_search(text, m, re))
        text = m.prefix().str() + with(m) + m.suffix().str();
    };
    const std::string &file = inst.file;
    int64_t wg = profile.workgroupSize;
    // TREE / TREE_MAX %buf: workgroup reductions (sum, maximum); ARGMAX_TREE: value and lowest index.
    expand("TREE", 1, [&](const std::smatch &m) { return tree(m[1].str(), "addf", wg, counter); });
    expand("TREE_MAX", 1, [&](const std::smatch &m) { return tree(m[1].str(), "maximumf", wg, counter); });
    expand("ARGMAX_TREE", 0, [&](const std::smatch &) { return argmaxTree(wg); });
    // WARGS, WLOAD %dst %r %c: the weight operand in its storage format.
    expand("WARGS", 0, [&](const std::smatch &) { return weightArgs(param(params, "W_FORMAT", file)); });
    expand("WLOAD", 3, [&](const std::smatch &m) {
      return weightLoad(m[1].str(), m[2].str(), m[3].str(), params, file, counter);
    });
    // KVARGS %c, KVLOAD %dst %c %slot %d: a KV cache in its format.
    expand("KVARGS", 1, [&](const std::smatch &m) { return kvArgs(m[1].str(), param(params, "KV", file)); });
    expand("KVLOAD", 4, [&](const std::smatch &m) {
      return kvLoad(m[1].str(), m[2].str(), m[3].str(), m[4].str(), param(params, "KV", file), param(params, "D", file),
                    counter);
    });
    // GELU %dst %v: the GELU form of parameter GELU.
    expand("GELU", 2, [&](const std::smatch &m) { return geluOps(m[1].str(), m[2].str(), param(params, "GELU", file), counter); });
    for (const auto &[key, value] : params) {
      std::string marker = "{{" + key + "}}";
      for (size_t at; (at = text.find(marker)) != std::string::npos;)
        text.replace(at, marker.size(), value);
    }
    if (text.find("{{") != std::string::npos)
      throw Error("gpu: kernel template " + inst.file + " has a parameter left unset near '" +
                  text.substr(text.find("{{"), 20) + "'");
    text = std::regex_replace(text, std::regex(R"(gpu\.func @([A-Za-z0-9_]+)\()"), "gpu.func @$1" + inst.suffix + "(");
    os << text << "\n";
  }
  os << "}\n}\n";
  return os.str();
}

} // namespace kiln::gpu
