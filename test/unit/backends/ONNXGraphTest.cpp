//===- ONNXGraphTest.cpp - the onnx backend's model assembly and checking -===//
//
// checkModel is the compile's gate: a broken graph must fail it with the
// checker's message, and a valid one (external data in weights.bin, the
// CtxScatter/CtxGather functions, MatMulNBits through the registered
// schema) must pass.
//
//===----------------------------------------------------------------------===//
#include "GraphBuilder.h"

#include "kiln/Support/Error.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

using namespace kiln;
using namespace kiln::onnxb;
using onnx::TensorProto;

namespace {

std::string writeArtifact(ArtifactWriter &writer, GraphBuilder &g, const std::string &dir) {
  std::string bytes;
  g.model().SerializeToString(&bytes);
  writer.addFile("model.onnx", bytes);
  writer.finish();
  return dir + "/model.onnx";
}

std::string tempDir(const char *name) {
  auto dir = std::filesystem::temp_directory_path() / (std::string("kiln-onnx-graph-") + name);
  std::filesystem::remove_all(dir);
  return dir.string();
}

/// y = MatMulNBits(x, B) + the retained state of a one-slot cache.
void buildValid(GraphBuilder &g) {
  g.input("x", TensorProto::FLOAT, {"batch_size", 32});
  g.input("position_ids", TensorProto::INT64, {"batch_size", "seq_len"});
  g.input("past_key.0", TensorProto::FLOAT, {"batch_size", 1, "ctx_len", 4});
  g.input("k", TensorProto::FLOAT, {"batch_size", 1, "seq_len", 4});
  g.output("y", TensorProto::FLOAT, {"batch_size", 8});
  g.output("past_key.0_RetainedState", TensorProto::FLOAT, {"batch_size", 1, "ctx_len", 4});
  std::vector<uint8_t> b(8 * 1 * 16, 0x88);
  std::vector<float> s(8, 0.5f);
  std::string B = g.initializer("w.qweight", TensorProto::UINT8, {8, 1, 16}, b.data(), b.size(), "matmulnbits");
  std::string S = g.initializer("w.scales", TensorProto::FLOAT, {8, 1}, s.data(), s.size() * 4, "matmulnbits");
  g.nodeTo("y", "MatMulNBits", {"x", B, S},
           {attr("K", int64_t(32)), attr("N", int64_t(8)), attr("bits", int64_t(4)), attr("block_size", int64_t(32))},
           kMicrosoftDomain);
  g.nodeTo("past_key.0_RetainedState", "CtxScatter", {"past_key.0", "position_ids", "k"}, {}, kQualcommDomain);
  g.model().add_functions()->CopyFrom(ctxScatterFunction());
  g.model().add_functions()->CopyFrom(ctxGatherFunction());
}

} // namespace

TEST(ONNXGraph, ValidModelPassesTheChecker) {
  std::string dir = tempDir("valid");
  ArtifactWriter writer(dir);
  GraphBuilder g(writer);
  buildValid(g);
  writer.addCheck([&](const std::string &d) { checkModel(g.model(), d + "/model.onnx"); });
  EXPECT_NO_THROW(writeArtifact(writer, g, dir));
  EXPECT_TRUE(std::filesystem::exists(dir + "/manifest.yaml"));
  std::filesystem::remove_all(dir);
}

TEST(ONNXGraph, ShapeInferenceCatchesATypeMismatch) {
  std::string dir = tempDir("mismatch");
  ArtifactWriter writer(dir);
  GraphBuilder g(writer);
  buildValid(g);
  // MatMulNBits gives [batch, 8]: declaring N = 9 contradicts the output's shape.
  g.graph().mutable_node(0)->mutable_attribute(1)->set_i(9);
  try {
    checkModel(g.model(), "");
    FAIL() << "no error";
  } catch (const Error &e) {
    EXPECT_NE(std::string(e.what()).find("onnx backend: the generated model fails the ONNX checker:"), std::string::npos)
        << e.what();
  }
}

TEST(ONNXGraph, CheckerFailureLeavesNoArtifact) {
  std::string dir = tempDir("broken");
  ArtifactWriter writer(dir);
  GraphBuilder g(writer);
  buildValid(g);
  g.node("Add", {"x", "undefined_tensor"});
  writer.addCheck([&](const std::string &d) { checkModel(g.model(), d + "/model.onnx"); });
  try {
    writeArtifact(writer, g, dir);
    FAIL() << "no error";
  } catch (const Error &e) {
    std::string m = e.what();
    EXPECT_NE(m.find("fails the ONNX checker"), std::string::npos) << m;
    EXPECT_NE(m.find("undefined_tensor"), std::string::npos) << m;
    EXPECT_EQ(m.find('\n'), std::string::npos) << "one line";
  }
  EXPECT_FALSE(std::filesystem::exists(dir)) << "the failed compile's files are removed";
}

TEST(ONNXGraph, MissingExternalDataFailsTheChecker) {
  std::string dir = tempDir("external");
  ArtifactWriter writer(dir);
  GraphBuilder g(writer);
  buildValid(g);
  auto *t = g.graph().mutable_initializer(0);
  t->mutable_external_data(0)->set_value("elsewhere.bin");
  writer.addCheck([&](const std::string &d) { checkModel(g.model(), d + "/model.onnx"); });
  EXPECT_THROW(writeArtifact(writer, g, dir), Error);
  EXPECT_FALSE(std::filesystem::exists(dir));
}

TEST(ONNXGraph, ConstantsAreShared) {
  ArtifactWriter writer(tempDir("constants"));
  GraphBuilder g(writer);
  EXPECT_EQ(g.constI64({1, 2}), g.constI64({1, 2}));
  EXPECT_NE(g.constI64({1, 2}), g.constI64({2, 1}));
  EXPECT_EQ(g.scalarF32(0.5f), g.scalarF32(0.5f));
  EXPECT_NE(g.scalarF32(0.0f), g.scalarF32(-0.0f));
  EXPECT_EQ(g.graph().node_size(), 5); // [1,2], [2,1], 0.5, 0, -0
}
