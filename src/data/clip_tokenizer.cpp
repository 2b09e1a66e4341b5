// Port of open_clip/tokenizer.py (SimpleTokenizer, clean='lower') and of the parts of
// ftfy.fix_text and html.unescape it depends on. Text is handled as UTF-32 code points, like
// Python str; every step names the Python code it mirrors.
//
// Known gap: ftfy's mojibake repair (fix_encoding: decoding text that looks like UTF-8 read as
// Latin-1/Windows-125x, restore_byte_a0, replace_lossy_sequences, decode_inconsistent_utf8) is
// heuristic and not ported; text it would change (e.g. "Ã©") tokenizes differently.

#include "src/data/clip_tokenizer.h"

#include <zlib.h>

#include <algorithm>
#include <array>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <sstream>
#include <stdexcept>
#include <string_view>

#include "src/data/clip_tokenizer_tables.h"
#include "src/data/py_unicode.h"
#include "src/data/text_fixes.h"
#include "src/project_python.h"

namespace cliprepro {
namespace {

namespace tables = clip_tables;
using namespace py_unicode;
using text_fixes::ftfy_fix_text;
using text_fixes::html_unescape;

tables::TokenClass token_class(char32_t cp) {
  if (cp > 0x10FFFF) return tables::TokenClass::kNone;
  const auto* end = tables::kTokenClassRanges + tables::kTokenClassRangesSize;
  const auto* it =
      std::upper_bound(tables::kTokenClassRanges, end, cp,
                       [](char32_t c, const tables::ClassRange& r) { return c < r.first; });
  return (it - 1)->token_class;
}

// Does `c` match pattern character `p` of the split regex under IGNORECASE?
bool matches_ignorecase(char32_t c, char p) {
  if (c == static_cast<unsigned char>(p)) return true;
  for (size_t i = 0; i < tables::kCaseVariantsSize; ++i) {
    if (tables::kCaseVariants[i].ascii_letter == p && tables::kCaseVariants[i].code_point == c) {
      return true;
    }
  }
  return false;
}

// ---------------------------------------------------------------------------------------------
// open_clip cleanup and split

U32 py_strip(const U32& s) {
  size_t b = 0, e = s.size();
  while (b < e && py_isspace(s[b])) ++b;
  while (e > b && py_isspace(s[e - 1])) --e;
  return s.substr(b, e - b);
}

// " ".join(s.split())
U32 join_split(const U32& s) {
  U32 out;
  size_t i = 0;
  while (i < s.size()) {
    while (i < s.size() && py_isspace(s[i])) ++i;
    if (i == s.size()) break;
    if (!out.empty()) out.push_back(U' ');
    while (i < s.size() && !py_isspace(s[i])) out.push_back(s[i++]);
  }
  return out;
}

U32 clean_u32(const U32& text) {
  // basic_clean
  U32 t = ftfy_fix_text(text);
  t = html_unescape(html_unescape(t));
  t = py_strip(t);
  // whitespace_clean(...).lower()
  return py_lower(join_split(t));
}

// Length of pattern literal `lit` matched at s[i] under IGNORECASE, or 0.
size_t match_literal(const U32& s, size_t i, std::string_view lit) {
  if (s.size() - i < lit.size()) return 0;
  for (size_t k = 0; k < lit.size(); ++k) {
    if (!matches_ignorecase(s[i + k], lit[k])) return 0;
  }
  return lit.size();
}

// regex.findall of <start_of_text>|<end_of_text>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|
// [^\s\p{L}\p{N}]+ (IGNORECASE): the first alternative that matches wins at each position.
std::vector<U32> split_tokens(const U32& s) {
  static constexpr std::array<std::string_view, 9> kLiterals = {
      "<start_of_text>", "<end_of_text>", "'s", "'t", "'re", "'ve", "'m", "'ll", "'d"};
  using tables::TokenClass;
  std::vector<U32> tokens;
  size_t i = 0;
  while (i < s.size()) {
    size_t len = 0;
    for (std::string_view lit : kLiterals) {
      if ((len = match_literal(s, i, lit)) != 0) break;
    }
    if (len == 0) {
      const TokenClass cls = token_class(s[i]);
      if (cls == TokenClass::kNumber) {
        len = 1;
      } else if (cls == TokenClass::kLetter || cls == TokenClass::kOther) {
        len = 1;
        while (i + len < s.size() && token_class(s[i + len]) == cls) ++len;
      }
    }
    if (len == 0) {
      ++i;  // nothing matches here: findall moves on
      continue;
    }
    tokens.push_back(s.substr(i, len));
    i += len;
  }
  return tokens;
}

// bytes_to_unicode(): printable bytes stand for themselves, the rest map to 256 + n.
std::vector<char32_t> bytes_to_unicode() {
  std::vector<int> bs;
  for (int b = '!'; b <= '~'; ++b) bs.push_back(b);
  for (int b = 0xA1; b <= 0xAC; ++b) bs.push_back(b);
  for (int b = 0xAE; b <= 0xFF; ++b) bs.push_back(b);
  std::vector<char32_t> map(256, 0);
  std::vector<bool> seen(256, false);
  for (int b : bs) map[b] = static_cast<char32_t>(b), seen[b] = true;
  int n = 0;
  for (int b = 0; b < 256; ++b) {
    if (!seen[b]) map[b] = static_cast<char32_t>(256 + n++);
  }
  return map;
}

// Vocabulary order of the 256 byte symbols: dict(zip(bs, cs)).values(), i.e. bs order.
std::vector<int> byte_vocab_order() {
  std::vector<int> order;
  std::vector<bool> seen(256, false);
  for (int b = '!'; b <= '~'; ++b) order.push_back(b), seen[b] = true;
  for (int b = 0xA1; b <= 0xAC; ++b) order.push_back(b), seen[b] = true;
  for (int b = 0xAE; b <= 0xFF; ++b) order.push_back(b), seen[b] = true;
  for (int b = 0; b < 256; ++b) {
    if (!seen[b]) order.push_back(b);
  }
  return order;
}

std::string read_gzip(const std::string& path) {
  gzFile f = gzopen(path.c_str(), "rb");
  if (f == nullptr) throw std::runtime_error("ClipTokenizer: cannot open vocabulary " + path);
  std::string data;
  std::array<char, 1 << 16> buf;
  while (true) {
    const int n = gzread(f, buf.data(), static_cast<unsigned>(buf.size()));
    if (n < 0) {
      int errnum = 0;
      const std::string msg = gzerror(f, &errnum);
      gzclose(f);
      throw std::runtime_error("ClipTokenizer: cannot read vocabulary " + path + ": " + msg);
    }
    if (n == 0) break;
    data.append(buf.data(), static_cast<size_t>(n));
  }
  gzclose(f);
  return data;
}

constexpr const char* kSpecialTokens[] = {"<start_of_text>", "<end_of_text>"};

}  // namespace

// ---------------------------------------------------------------------------------------------

ClipTokenizer::ClipTokenizer(const std::string& bpe_path) {
  const std::string data = read_gzip(bpe_path);
  // merges = data.split('\n')[1 : 49152 - 256 - 2 + 1]
  constexpr size_t kFirst = 1, kEnd = 49152 - 256 - 2 + 1;
  std::vector<std::pair<std::string, std::string>> merges;
  merges.reserve(kEnd - kFirst);
  size_t line_no = 0, pos = 0;
  while (line_no < kEnd && pos <= data.size()) {
    size_t nl = data.find('\n', pos);
    if (nl == std::string::npos) nl = data.size();
    if (line_no >= kFirst) {
      std::istringstream words(data.substr(pos, nl - pos));
      std::string a, b, extra;
      if (!(words >> a >> b) || (words >> extra)) {
        throw std::runtime_error("ClipTokenizer: malformed vocabulary " + bpe_path + " (line " +
                                 std::to_string(line_no + 1) + " is not a merge pair)");
      }
      merges.emplace_back(std::move(a), std::move(b));
    }
    ++line_no;
    pos = nl + 1;
  }
  if (merges.size() != kEnd - kFirst) {
    throw std::runtime_error("ClipTokenizer: malformed vocabulary " + bpe_path + " (" +
                             std::to_string(merges.size()) + " merges, expected " +
                             std::to_string(kEnd - kFirst) + ")");
  }

  const std::vector<char32_t> b2u = bytes_to_unicode();
  byte_encoder_.resize(256);
  for (int b = 0; b < 256; ++b) {
    append_utf8(byte_encoder_[b], b2u[b]);
    byte_decoder_[byte_encoder_[b]] = b;
  }
  std::vector<std::string> vocab;
  vocab.reserve(kVocabSize);
  const std::vector<int> order = byte_vocab_order();
  for (int b : order) vocab.push_back(byte_encoder_[b]);
  for (int b : order) vocab.push_back(byte_encoder_[b] + "</w>");
  for (const auto& [a, b] : merges) vocab.push_back(a + b);
  for (const char* t : kSpecialTokens) vocab.emplace_back(t);
  // dict(zip(...)): a repeated key keeps its last index.
  for (size_t i = 0; i < vocab.size(); ++i) encoder_[vocab[i]] = static_cast<int64_t>(i);
  decoder_ = vocab;
  for (size_t i = 0; i < merges.size(); ++i) {
    bpe_ranks_[merges[i].first + ' ' + merges[i].second] = static_cast<int>(i);
  }
  if (encoder_.at(kSpecialTokens[0]) != kSotId || encoder_.at(kSpecialTokens[1]) != kEotId) {
    throw std::runtime_error("ClipTokenizer: unexpected special token ids in " + bpe_path);
  }
}

std::string ClipTokenizer::default_bpe_path() {
  auto readable = [](const std::string& p) {
    std::FILE* f = std::fopen(p.c_str(), "rb");
    if (f != nullptr) std::fclose(f);
    return f != nullptr;
  };
  if (const char* env = std::getenv("CLIPREPRO_BPE_VOCAB"); env != nullptr && *env != '\0') {
    if (!readable(env)) {
      throw std::runtime_error(std::string("ClipTokenizer: CLIPREPRO_BPE_VOCAB=") + env +
                               " is not a readable file");
    }
    return env;
  }
  // find_spec locates the installed package without importing it (importing open_clip imports
  // torch: 4.4 s of a tiny run's start, measured by scripts/bench_openclip.py --profile).
  std::string path = project_python_output(
      "import importlib.util as u,os;"
      "print(os.path.join(u.find_spec('open_clip').submodule_search_locations[0],"
      "'bpe_simple_vocab_16e6.txt.gz'))");
  while (!path.empty() && (path.back() == '\n' || path.back() == '\r')) path.pop_back();
  if (path.empty() || !readable(path)) {
    throw std::runtime_error(
        "ClipTokenizer: cannot find bpe_simple_vocab_16e6.txt.gz from open_clip_torch via '" +
        project_python() +
        "'; set CLIPREPRO_BPE_VOCAB to the file's path (or CLIPREPRO_PYTHON to a Python "
        "with open_clip_torch installed)");
  }
  return path;
}

std::string ClipTokenizer::clean(const std::string& utf8_text) {
  return u32_to_utf8(clean_u32(utf8_to_u32(utf8_text)));
}

// SimpleTokenizer.bpe on a byte-encoded token, appending the ids of its pieces.
void ClipTokenizer::bpe(const std::string& token, std::vector<int64_t>& out) const {
  for (const char* special : kSpecialTokens) {
    if (token == special) {  // the cache is seeded with the special tokens
      out.push_back(encoder_.at(token));
      return;
    }
  }
  // Symbols are whole code points of the byte-encoded token; the last one carries '</w>'.
  std::vector<std::string> word;
  for (size_t i = 0; i < token.size();) {
    const auto b = static_cast<unsigned char>(token[i]);
    const size_t len = b < 0x80 ? 1 : b < 0xE0 ? 2 : b < 0xF0 ? 3 : 4;
    word.push_back(token.substr(i, len));
    i += len;
  }
  word.back() += "</w>";
  while (word.size() > 1) {
    int best = std::numeric_limits<int>::max();
    size_t best_i = 0;
    for (size_t i = 0; i + 1 < word.size(); ++i) {
      auto it = bpe_ranks_.find(word[i] + ' ' + word[i + 1]);
      if (it != bpe_ranks_.end() && it->second < best) best = it->second, best_i = i;
    }
    if (best == std::numeric_limits<int>::max()) break;
    const std::string first = word[best_i], second = word[best_i + 1];
    // Merge every non-overlapping (first, second) left to right, as the Python loop does.
    std::vector<std::string> merged;
    merged.reserve(word.size());
    for (size_t i = 0; i < word.size();) {
      if (i + 1 < word.size() && word[i] == first && word[i + 1] == second) {
        merged.push_back(first + second);
        i += 2;
      } else {
        merged.push_back(word[i++]);
      }
    }
    word = std::move(merged);
  }
  for (const std::string& piece : word) out.push_back(encoder_.at(piece));
}

std::vector<int64_t> ClipTokenizer::encode(const std::string& utf8_text) const {
  std::vector<int64_t> ids;
  for (const U32& token : split_tokens(clean_u32(utf8_to_u32(utf8_text)))) {
    std::string encoded;
    for (char c : u32_to_utf8(token)) encoded += byte_encoder_[static_cast<unsigned char>(c)];
    bpe(encoded, ids);
  }
  return ids;
}

torch::Tensor ClipTokenizer::tokenize(const std::vector<std::string>& texts,
                                      int64_t context_length) const {
  if (context_length < 1) {
    throw std::invalid_argument("ClipTokenizer::tokenize: context_length must be positive");
  }
  const auto rows = static_cast<int64_t>(texts.size());
  torch::Tensor result = torch::zeros({rows, context_length}, torch::kLong);
  auto acc = result.accessor<int64_t, 2>();
  for (int64_t r = 0; r < rows; ++r) {
    std::vector<int64_t> tokens{kSotId};
    const std::vector<int64_t> ids = encode(texts[r]);
    tokens.insert(tokens.end(), ids.begin(), ids.end());
    tokens.push_back(kEotId);
    if (static_cast<int64_t>(tokens.size()) > context_length) {
      tokens.resize(context_length);
      tokens.back() = kEotId;
    }
    for (size_t c = 0; c < tokens.size(); ++c) acc[r][static_cast<int64_t>(c)] = tokens[c];
  }
  return result;
}

std::string ClipTokenizer::decode(const std::vector<int64_t>& ids) const {
  std::string symbols;
  for (int64_t id : ids) {
    if (id < 0 || id >= vocab_size()) {
      throw std::out_of_range("ClipTokenizer::decode: id " + std::to_string(id));
    }
    symbols += decoder_[id];
  }
  // Map each symbol code point back to its byte; "</w>" is plain ASCII and survives as is.
  std::string bytes;
  const U32 cps = utf8_to_u32(symbols);
  for (char32_t cp : cps) {
    std::string key;
    append_utf8(key, cp);
    auto it = byte_decoder_.find(key);
    if (it == byte_decoder_.end()) throw std::runtime_error("ClipTokenizer::decode: bad symbol");
    bytes.push_back(static_cast<char>(it->second));
  }
  std::string text = u32_to_utf8(utf8_to_u32(bytes));
  std::string out;
  for (size_t i = 0; i < text.size();) {
    if (text.compare(i, 4, "</w>") == 0) {
      out.push_back(' ');
      i += 4;
    } else {
      out.push_back(text[i++]);
    }
  }
  return out;
}

}  // namespace cliprepro
