//===- Tokenizer.cpp - GPT-2 byte-level BPE -------------------------------===//
#include "kiln/Runtime/Tokenizer.h"

#include "kiln/Support/Error.h"
#include "kiln/Support/File.h"

#include <nlohmann/json.hpp>
#include <unicode/uchar.h>
#include <unicode/utf8.h>

#include <algorithm>
#include <climits>
#include <fstream>
#include <sstream>

namespace kiln {

namespace {

/// GPT-2's bytes_to_unicode(): byte b is written in vocab.json as this code point.
std::vector<uint32_t> byteToCodePoint() {
  std::vector<uint32_t> map(256, 0);
  std::vector<bool> direct(256, false);
  for (int b = '!'; b <= '~'; ++b)
    direct[b] = true;
  for (int b = 0xa1; b <= 0xac; ++b)
    direct[b] = true;
  for (int b = 0xae; b <= 0xff; ++b)
    direct[b] = true;
  uint32_t next = 256;
  for (int b = 0; b < 256; ++b)
    map[b] = direct[b] ? uint32_t(b) : next++;
  return map;
}

/// Turns a vocab/merges symbol (byte-to-unicode text) back into raw bytes.
bool symbolToBytes(const std::string &symbol, std::string &out) {
  static const std::vector<uint32_t> forward = byteToCodePoint();
  static const std::vector<int> inverse = [] {
    std::vector<int> inv(512, -1);
    for (int b = 0; b < 256; ++b)
      inv[forward[b]] = b;
    return inv;
  }();
  out.clear();
  int32_t i = 0, n = int32_t(symbol.size());
  while (i < n) {
    UChar32 c;
    U8_NEXT(reinterpret_cast<const uint8_t *>(symbol.data()), i, n, c);
    if (c < 0 || c >= 512 || inverse[c] < 0)
      return false;
    out.push_back(char(inverse[c]));
  }
  return true;
}

enum class CharClass { Letter, Number, Space, Other };

CharClass classify(UChar32 c) {
  if (c < 0)
    return CharClass::Other; // an invalid UTF-8 byte stands for itself
  if (u_hasBinaryProperty(c, UCHAR_WHITE_SPACE))
    return CharClass::Space;
  uint32_t mask = U_GET_GC_MASK(c);
  if (mask & U_GC_L_MASK)
    return CharClass::Letter;
  if (mask & U_GC_N_MASK)
    return CharClass::Number;
  return CharClass::Other;
}

struct Unit {
  UChar32 cp;
  size_t begin, end; // byte range in the text
  CharClass cls;
};

} // namespace

std::unique_ptr<Tokenizer> Tokenizer::load(const std::string &vocabPath, const std::string &mergesPath) {
  auto tok = std::unique_ptr<Tokenizer>(new Tokenizer());
  nlohmann::json vocab;
  try {
    vocab = nlohmann::json::parse(readFile(vocabPath, "cannot open tokenizer file"));
  } catch (const nlohmann::json::exception &e) {
    fail(vocabPath, std::string("vocab is not valid JSON: ") + e.what());
  }
  if (!vocab.is_object() || vocab.empty())
    fail(vocabPath, "vocab must be a non-empty JSON object of token -> id");
  tok->idToBytes_.resize(vocab.size());
  std::vector<bool> seen(vocab.size(), false);
  std::string bytes;
  for (auto &[symbol, id] : vocab.items()) {
    if (!id.is_number_integer() || id.get<int64_t>() < 0 || id.get<int64_t>() >= int64_t(vocab.size()))
      fail(vocabPath, "token '" + symbol + "' has an id outside 0.." + std::to_string(vocab.size() - 1));
    size_t i = size_t(id.get<int64_t>());
    if (seen[i])
      fail(vocabPath, "id " + std::to_string(i) + " is used twice");
    seen[i] = true;
    if (!symbolToBytes(symbol, bytes))
      bytes = symbol; // special tokens such as <|endoftext|> are plain text
    tok->idToBytes_[i] = bytes;
    tok->bytesToId_.emplace(bytes, int32_t(i));
  }

  std::istringstream merges(readFile(mergesPath, "cannot open tokenizer file"));
  std::string line;
  int rank = 0, lineNo = 0;
  while (std::getline(merges, line)) {
    ++lineNo;
    if (!line.empty() && line.back() == '\r')
      line.pop_back();
    if (line.empty() || (lineNo == 1 && line.rfind("#version", 0) == 0))
      continue;
    size_t space = line.find(' ');
    std::string a, b;
    if (space == std::string::npos || line.find(' ', space + 1) != std::string::npos ||
        !symbolToBytes(line.substr(0, space), a) || !symbolToBytes(line.substr(space + 1), b))
      fail(mergesPath, "line " + std::to_string(lineNo) + ": expected two symbols separated by a space");
    if (!tok->bytesToId_.count(a + b))
      fail(mergesPath, "line " + std::to_string(lineNo) + ": merge result '" + line + "' is not in the vocab");
    tok->mergeRank_.emplace(std::make_pair(std::move(a), std::move(b)), rank++);
  }
  for (int b = 0; b < 256; ++b)
    if (!tok->bytesToId_.count(std::string(1, char(b))))
      fail(vocabPath, "vocab lacks the single-byte token for byte " + std::to_string(b));
  return tok;
}

std::unique_ptr<Tokenizer> Tokenizer::fromDir(const std::string &dir) {
  return load(dir + "/vocab.json", dir + "/merges.txt");
}

std::vector<std::string> Tokenizer::preTokenize(std::string_view text) const {
  std::vector<Unit> units;
  const auto *s = reinterpret_cast<const uint8_t *>(text.data());
  int32_t i = 0, n = int32_t(text.size());
  if (text.size() > size_t(INT32_MAX))
    throw Error("text is too long to tokenize (over 2 GiB)");
  while (i < n) {
    int32_t start = i;
    UChar32 c;
    U8_NEXT(s, i, n, c);
    if (c < 0) // invalid sequence: one byte at a time, each its own unit
      i = start + 1;
    units.push_back({c, size_t(start), size_t(i), classify(c)});
  }

  std::vector<std::string> pieces;
  size_t pos = 0;
  const size_t count = units.size();
  auto runOf = [&](size_t from, CharClass cls) {
    while (from < count && units[from].cls == cls)
      ++from;
    return from;
  };
  auto emit = [&](size_t from, size_t to) {
    pieces.emplace_back(text.substr(units[from].begin, units[to - 1].end - units[from].begin));
  };
  while (pos < count) {
    const Unit &u = units[pos];
    // 's|'t|'re|'ve|'m|'ll|'d
    if (u.cp == '\'' && pos + 1 < count) {
      UChar32 a = units[pos + 1].cp, b = pos + 2 < count ? units[pos + 2].cp : 0;
      size_t len = 0;
      if (a == 's' || a == 't' || a == 'm' || a == 'd')
        len = 2;
      else if ((a == 'r' && b == 'e') || (a == 'v' && b == 'e') || (a == 'l' && b == 'l'))
        len = 3;
      if (len) {
        emit(pos, pos + len);
        pos += len;
        continue;
      }
    }
    // ' ?\p{L}+', ' ?\p{N}+', ' ?[^\s\p{L}\p{N}]+'
    size_t body = (u.cp == ' ' && pos + 1 < count && units[pos + 1].cls != CharClass::Space) ? pos + 1 : pos;
    if (units[body].cls != CharClass::Space) {
      size_t end = runOf(body, units[body].cls);
      emit(pos, end);
      pos = end;
      continue;
    }
    // '\s+(?!\S)|\s+': a white-space run, leaving its last character to the
    // next piece when a non-space follows and the run is longer than one.
    size_t end = runOf(pos, CharClass::Space);
    if (end < count && end - pos > 1)
      --end;
    emit(pos, end);
    pos = end;
  }
  return pieces;
}

void Tokenizer::bpe(const std::string &piece, std::vector<int32_t> &out) const {
  {
    std::lock_guard<std::mutex> lock(cacheMutex_);
    auto cached = cache_.find(piece);
    if (cached != cache_.end()) {
      out.insert(out.end(), cached->second.begin(), cached->second.end());
      return;
    }
  }
  std::vector<std::string> symbols;
  for (char c : piece)
    symbols.emplace_back(1, c);
  while (symbols.size() > 1) {
    int best = INT_MAX;
    size_t at = 0;
    for (size_t i = 0; i + 1 < symbols.size(); ++i) {
      auto it = mergeRank_.find({symbols[i], symbols[i + 1]});
      if (it != mergeRank_.end() && it->second < best)
        best = it->second, at = i;
    }
    if (best == INT_MAX)
      break;
    // Merge every occurrence of the best pair, left to right.
    std::string first = symbols[at], second = symbols[at + 1];
    std::vector<std::string> merged;
    for (size_t i = 0; i < symbols.size();) {
      if (i + 1 < symbols.size() && symbols[i] == first && symbols[i + 1] == second) {
        merged.push_back(first + second);
        i += 2;
      } else {
        merged.push_back(std::move(symbols[i++]));
      }
    }
    symbols = std::move(merged);
  }
  std::vector<int32_t> ids;
  for (const auto &sym : symbols)
    ids.push_back(bytesToId_.at(sym)); // every merge result and byte is in the vocab (checked on load)
  {
    std::lock_guard<std::mutex> lock(cacheMutex_);
    if (cache_.size() < 100000)
      cache_.emplace(piece, ids);
  }
  out.insert(out.end(), ids.begin(), ids.end());
}

std::vector<int32_t> Tokenizer::encode(std::string_view text) const {
  std::vector<int32_t> ids;
  for (const auto &piece : preTokenize(text))
    bpe(piece, ids);
  return ids;
}

const std::string &Tokenizer::tokenBytes(int32_t id) const {
  if (id < 0 || size_t(id) >= idToBytes_.size())
    throw Error("token id " + std::to_string(id) + " is outside the vocabulary (0.." +
                std::to_string(idToBytes_.size() - 1) + ")");
  return idToBytes_[size_t(id)];
}

std::string Tokenizer::decode(const std::vector<int32_t> &ids) const {
  std::string out;
  for (int32_t id : ids)
    out += tokenBytes(id);
  return out;
}

std::string TextStreamer::push(int32_t id) {
  pending_ += tokenizer_.tokenBytes(id);
  // Find how much of pending_ is complete UTF-8 (an incomplete tail is kept).
  size_t n = pending_.size(), cut = n;
  for (size_t back = 1; back <= 3 && back <= n; ++back) {
    unsigned char c = static_cast<unsigned char>(pending_[n - back]);
    if ((c & 0xc0) == 0x80)
      continue; // continuation byte: keep looking for the lead
    size_t need = c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : c >= 0xc0 ? 2 : 1;
    if (need > back)
      cut = n - back;
    break;
  }
  std::string ready = pending_.substr(0, cut);
  pending_.erase(0, cut);
  return ready;
}

std::string TextStreamer::flush() {
  std::string rest;
  rest.swap(pending_);
  return rest;
}

} // namespace kiln
