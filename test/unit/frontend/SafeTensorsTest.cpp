//===- SafeTensorsTest.cpp - safetensors reader/writer --------------------===//
#include "TestUtil.h"

#include "kiln/Frontend/SafeTensors.h"
#include "kiln/Support/Error.h"
#include "kiln/Support/Float16.h"

#include <cstring>
#include <gtest/gtest.h>

using namespace kiln;
using namespace kiln::test;

namespace {

/// A safetensors file built by hand: 8-byte length, header text, data.
std::string rawFile(const std::string &header, const std::string &data) {
  uint64_t len = header.size();
  std::string out(reinterpret_cast<const char *>(&len), 8);
  return out + header + data;
}

std::string openError(const std::string &bytes) {
  TempDir dir("st");
  writeBytes(dir.file("m.safetensors"), bytes);
  try {
    SafeTensorsFile::open(dir.file("m.safetensors"));
  } catch (const Error &e) {
    return e.what();
  }
  return "";
}

std::vector<uint8_t> floats(std::initializer_list<float> values) {
  std::vector<uint8_t> bytes(values.size() * 4);
  std::memcpy(bytes.data(), values.begin(), bytes.size());
  return bytes;
}

TEST(SafeTensors, WriteThenReadRoundTrips) {
  TempDir dir("st");
  SafeTensorsWriter w;
  w.add("a", DType::F32, {2, 2}, floats({1, 2, 3, 4}));
  uint16_t h[3] = {floatToHalf(0.5f), floatToHalf(-2.0f), floatToHalf(65504.0f)};
  w.add("b", DType::F16, {3}, std::vector<uint8_t>((uint8_t *)h, (uint8_t *)h + 6));
  uint16_t bf = floatToBf16(3.0f);
  w.add("c", DType::BF16, {1}, std::vector<uint8_t>((uint8_t *)&bf, (uint8_t *)&bf + 2));
  w.add("empty", DType::F32, {0, 4}, {});
  w.write(dir.file("m.safetensors"));

  std::string bytes = readBytes(dir.file("m.safetensors"));
  uint64_t headerLen;
  std::memcpy(&headerLen, bytes.data(), 8);
  EXPECT_EQ(headerLen % 8, 0u) << "header is padded to 8 bytes";

  auto f = SafeTensorsFile::open(dir.file("m.safetensors"));
  ASSERT_EQ(f->tensors().size(), 4u);
  const TensorView *a = f->find("a");
  ASSERT_NE(a, nullptr);
  EXPECT_EQ(a->shape, (std::vector<int64_t>{2, 2}));
  EXPECT_EQ(a->at(3), 4.0);
  EXPECT_EQ(f->find("b")->at(0), 0.5);
  EXPECT_EQ(f->find("b")->at(1), -2.0);
  EXPECT_EQ(f->find("b")->at(2), 65504.0);
  EXPECT_EQ(f->find("c")->at(0), 3.0);
  EXPECT_EQ(f->find("empty")->numElements(), 0);
  EXPECT_EQ(f->find("missing"), nullptr);
}

TEST(SafeTensors, AcceptsMetadata) {
  std::string data(8, '\0');
  auto msg = openError(rawFile(R"({"__metadata__":{"format":"pt"},"x":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})", data));
  EXPECT_EQ(msg, "");
}

TEST(SafeTensors, RejectsTruncatedFile) {
  EXPECT_NE(openError("abc").find("truncated safetensors file: 3 bytes"), std::string::npos);
}

TEST(SafeTensors, RejectsHeaderPastEnd) {
  std::string bytes = rawFile("{}", "");
  uint64_t huge = 1u << 30;
  std::memcpy(bytes.data(), &huge, 8);
  EXPECT_NE(openError(bytes).find("header length 1073741824 runs past the end of the file"), std::string::npos);
}

TEST(SafeTensors, RejectsHeaderThatIsNotJson) {
  EXPECT_NE(openError(rawFile("{not json", "")).find("header is not valid JSON"), std::string::npos);
  EXPECT_NE(openError(rawFile("[1,2]", "")).find("header is not a JSON object"), std::string::npos);
}

TEST(SafeTensors, RejectsOffsetsOutsideData) {
  auto msg = openError(rawFile(R"({"x":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}})", std::string(8, '\0')));
  EXPECT_NE(msg.find("tensor 'x': data_offsets [0, 16] lie outside the data area of 8 bytes"), std::string::npos) << msg;
}

TEST(SafeTensors, RejectsBeginAfterEnd) {
  auto msg = openError(rawFile(R"({"x":{"dtype":"F32","shape":[0],"data_offsets":[8,4]}})", std::string(8, '\0')));
  EXPECT_NE(msg.find("begin 8 is after end 4"), std::string::npos) << msg;
}

TEST(SafeTensors, RejectsOverlap) {
  auto msg = openError(rawFile(R"({"x":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                               R"("y":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})",
                               std::string(12, '\0')));
  EXPECT_NE(msg.find("tensors 'x' and 'y' overlap"), std::string::npos) << msg;
}

TEST(SafeTensors, RejectsDtypeSizeMismatch) {
  auto msg = openError(rawFile(R"({"x":{"dtype":"F16","shape":[4],"data_offsets":[0,16]}})", std::string(16, '\0')));
  EXPECT_NE(msg.find("dtype F16 and shape need 8 bytes but data_offsets span 16"), std::string::npos) << msg;
}

TEST(SafeTensors, RejectsUnknownDtypeAndBadShapes) {
  EXPECT_NE(openError(rawFile(R"({"x":{"dtype":"Q4","shape":[1],"data_offsets":[0,1]}})", "x"))
                .find("unsupported dtype 'Q4'"),
            std::string::npos);
  EXPECT_NE(openError(rawFile(R"({"x":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}})", "abcd"))
                .find("shape must hold non-negative integers"),
            std::string::npos);
  EXPECT_NE(openError(rawFile(R"({"x":{"dtype":"F32","shape":[4611686018427387904,4611686018427387904],)"
                              R"("data_offsets":[0,4]}})",
                              "abcd"))
                .find("shape is too large"),
            std::string::npos);
  EXPECT_NE(openError(rawFile(R"({"x":{"dtype":"F32","shape":[1]}})", "abcd")).find("data_offsets must be"),
            std::string::npos);
}

TEST(SafeTensors, MissingFileNamesThePath) {
  try {
    SafeTensorsFile::open("/nonexistent/model.safetensors");
    FAIL();
  } catch (const Error &e) {
    EXPECT_NE(std::string(e.what()).find("/nonexistent/model.safetensors: cannot open"), std::string::npos);
  }
}

TEST(Float16, ConvertsExactly) {
  EXPECT_EQ(floatToHalf(1.0f), 0x3c00);
  EXPECT_EQ(floatToHalf(-2.0f), 0xc000);
  EXPECT_EQ(floatToHalf(65504.0f), 0x7bff);
  EXPECT_EQ(floatToHalf(65520.0f), 0x7c00) << "rounds to infinity";
  EXPECT_EQ(floatToHalf(5.960464477539063e-08f), 0x0001) << "smallest subnormal";
  EXPECT_EQ(halfToFloat(0x0001), 5.960464477539063e-08f);
  EXPECT_EQ(halfToFloat(0x3555), 0.333251953125f);
  // 1 + 2^-11 is halfway between 1 and the next half: ties to even (1.0).
  EXPECT_EQ(floatToHalf(1.0f + 1.0f / 2048), 0x3c00);
  EXPECT_EQ(floatToHalf(1.0f + 3.0f / 2048), 0x3c02);
  EXPECT_EQ(bf16ToFloat(floatToBf16(3.140625f)), 3.140625f);
  EXPECT_EQ(floatToBf16(1.0f + 1.0f / 256), 0x3f80) << "ties to even";
  for (uint32_t h = 0; h < 0x7c00; ++h)
    EXPECT_EQ(floatToHalf(halfToFloat(uint16_t(h))), h) << "every finite half round-trips";
}

} // namespace
