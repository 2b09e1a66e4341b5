// Port of open_clip/tokenizer.py (SimpleTokenizer, clean='lower') and of the parts of
// ftfy.fix_text and html.unescape it depends on. Text is handled as UTF-32 code points, like
// Python str; every step names the Python code it mirrors.
//
// Known gap: ftfy's mojibake repair (fix_encoding: decoding text that looks like UTF-8 read as
// Latin-1/Windows-125x, restore_byte_a0, replace_lossy_sequences, decode_inconsistent_utf8) is
// heuristic and not ported; text it would change (e.g. "Ã©") tokenizes differently.
#include "src/data/clip_tokenizer.h"

#include <unicode/uchar.h>
#include <unicode/unorm2.h>
#include <unicode/ustring.h>
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

namespace cliprepro {
namespace {

namespace tables = clip_tables;
using U32 = std::u32string;

// ---------------------------------------------------------------------------------------------
// UTF-8 <-> UTF-32

// Invalid UTF-8 becomes U+FFFD per bad byte (inputs from Python are always valid).
U32 utf8_to_u32(std::string_view s) {
  U32 out;
  out.reserve(s.size());
  size_t i = 0;
  while (i < s.size()) {
    const auto b = static_cast<unsigned char>(s[i]);
    int len = 0;
    char32_t cp = 0;
    if (b < 0x80) {
      len = 1, cp = b;
    } else if ((b & 0xE0) == 0xC0) {
      len = 2, cp = b & 0x1F;
    } else if ((b & 0xF0) == 0xE0) {
      len = 3, cp = b & 0x0F;
    } else if ((b & 0xF8) == 0xF0) {
      len = 4, cp = b & 0x07;
    }
    bool ok = len > 0 && i + len <= s.size();
    for (int k = 1; ok && k < len; ++k) {
      const auto c = static_cast<unsigned char>(s[i + k]);
      ok = (c & 0xC0) == 0x80;
      cp = (cp << 6) | (c & 0x3F);
    }
    static constexpr std::array<char32_t, 5> kMin = {0, 0, 0x80, 0x800, 0x10000};
    if (ok && (cp < kMin[len] || cp > 0x10FFFF)) ok = false;
    if (!ok) {
      out.push_back(0xFFFD);
      ++i;
    } else {
      out.push_back(cp);
      i += len;
    }
  }
  return out;
}

void append_utf8(std::string& out, char32_t cp) {
  if (cp < 0x80) {
    out.push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out.push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

std::string u32_to_utf8(const U32& s) {
  std::string out;
  out.reserve(s.size());
  // Lone surrogates (cannot come from valid UTF-8) are written as U+FFFD.
  for (char32_t cp : s) append_utf8(out, cp >= 0xD800 && cp <= 0xDFFF ? 0xFFFD : cp);
  return out;
}

// ---------------------------------------------------------------------------------------------
// ICU bridges (UTF-16)

std::vector<UChar> to_utf16(const U32& s) {
  std::vector<UChar> out;
  out.reserve(s.size() + 1);
  for (char32_t cp : s) {
    if (cp >= 0x10000) {
      out.push_back(static_cast<UChar>(0xD800 + ((cp - 0x10000) >> 10)));
      out.push_back(static_cast<UChar>(0xDC00 + ((cp - 0x10000) & 0x3FF)));
    } else {
      out.push_back(static_cast<UChar>(cp));
    }
  }
  return out;
}

U32 from_utf16(const UChar* s, int32_t n) {
  U32 out;
  out.reserve(n);
  for (int32_t i = 0; i < n; ++i) {
    char32_t c = s[i];
    if (c >= 0xD800 && c <= 0xDBFF && i + 1 < n && s[i + 1] >= 0xDC00 && s[i + 1] <= 0xDFFF) {
      c = 0x10000 + ((c - 0xD800) << 10) + (s[i + 1] - 0xDC00);
      ++i;
    }
    out.push_back(c);
  }
  return out;
}

void check_icu(UErrorCode err, const char* what) {
  if (U_FAILURE(err))
    throw std::runtime_error(std::string("ClipTokenizer: ICU ") + what + ": " + u_errorName(err));
}

// unicodedata.normalize("NFC", s)
U32 nfc(const U32& s) {
  UErrorCode err = U_ZERO_ERROR;
  const UNormalizer2* norm = unorm2_getNFCInstance(&err);
  check_icu(err, "NFC instance");
  const std::vector<UChar> src = to_utf16(s);
  const auto n = static_cast<int32_t>(src.size());
  if (unorm2_isNormalized(norm, src.data(), n, &err) && U_SUCCESS(err)) return s;
  err = U_ZERO_ERROR;
  std::vector<UChar> dst(static_cast<size_t>(n) * 3 + 16);
  int32_t len =
      unorm2_normalize(norm, src.data(), n, dst.data(), static_cast<int32_t>(dst.size()), &err);
  if (err == U_BUFFER_OVERFLOW_ERROR) {
    err = U_ZERO_ERROR;
    dst.resize(len);
    len = unorm2_normalize(norm, src.data(), n, dst.data(), len, &err);
  }
  check_icu(err, "NFC");
  return from_utf16(dst.data(), len);
}

// str.lower(): full lowercase mappings with Final_Sigma, no locale tailoring (ICU root locale).
U32 py_lower(const U32& s) {
  const std::vector<UChar> src = to_utf16(s);
  const auto n = static_cast<int32_t>(src.size());
  std::vector<UChar> dst(static_cast<size_t>(n) * 3 + 16);
  UErrorCode err = U_ZERO_ERROR;
  int32_t len = u_strToLower(dst.data(), static_cast<int32_t>(dst.size()), src.data(), n, "", &err);
  if (err == U_BUFFER_OVERFLOW_ERROR) {
    err = U_ZERO_ERROR;
    dst.resize(len);
    len = u_strToLower(dst.data(), len, src.data(), n, "", &err);
  }
  check_icu(err, "lowercase");
  return from_utf16(dst.data(), len);
}

// str.isspace() / str.split() / str.strip(): bidi class WS, B or S, or category Zs.
bool py_isspace(char32_t c) {
  if (u_charType(static_cast<UChar32>(c)) == U_SPACE_SEPARATOR) return true;
  const UCharDirection d = u_charDirection(static_cast<UChar32>(c));
  return d == U_WHITE_SPACE_NEUTRAL || d == U_BLOCK_SEPARATOR || d == U_SEGMENT_SEPARATOR;
}

// ---------------------------------------------------------------------------------------------
// Table lookups

using EntityMap = std::unordered_map<std::string_view, std::string_view>;

EntityMap build_map(const tables::StringPair* table, size_t size) {
  EntityMap m;
  for (size_t i = 0; i < size; ++i) m.emplace(table[i].key, table[i].value);
  return m;
}

const EntityMap& html5_entities() {
  static const EntityMap m = build_map(tables::kHtml5Entities, tables::kHtml5EntitiesSize);
  return m;
}

const EntityMap& ftfy_entities() {
  static const EntityMap m = build_map(tables::kFtfyEntities, tables::kFtfyEntitiesSize);
  return m;
}

// The UTF-8 value of entity `key` in `map`, or nullptr.
const char* find_entity(const EntityMap& map, const std::string& key) {
  auto it = map.find(key);
  return it == map.end() ? nullptr : it->second.data();  // table strings are NUL-terminated
}

const char* find_cp(const tables::CodepointString* table, size_t size, char32_t cp) {
  const auto* end = table + size;
  const auto* it = std::lower_bound(
      table, end, cp,
      [](const tables::CodepointString& e, char32_t c) { return e.code_point < c; });
  return it != end && it->code_point == cp ? it->value : nullptr;
}

bool in_cp_list(const char32_t* list, size_t size, char32_t cp) {
  return std::binary_search(list, list + size, cp);
}

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

void append_utf8_value(U32& out, const char* utf8) { out += utf8_to_u32(utf8); }

bool is_ascii_digit(char32_t c) { return c >= '0' && c <= '9'; }
bool is_ascii_hex(char32_t c) {
  return is_ascii_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}
bool is_ascii_alnum(char32_t c) {
  return is_ascii_digit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

// ---------------------------------------------------------------------------------------------
// html.unescape (Python 3.11 html/__init__.py)

// _replace_charref for a numeric reference; `value` saturates above 0x10FFFF.
void append_numeric_charref(U32& out, uint64_t value) {
  if (value <= 0x9F) {
    if (const char* r = find_cp(tables::kInvalidCharrefs, tables::kInvalidCharrefsSize,
                                static_cast<char32_t>(value))) {
      append_utf8_value(out, r);
      return;
    }
  }
  if ((value >= 0xD800 && value <= 0xDFFF) || value > 0x10FFFF) {
    out.push_back(0xFFFD);
    return;
  }
  const auto cp = static_cast<char32_t>(value);
  if (in_cp_list(tables::kInvalidCodepoints, tables::kInvalidCodepointsSize, cp)) return;
  out.push_back(cp);
}

U32 html_unescape(const U32& s) {
  if (s.find(U'&') == U32::npos) return s;
  U32 out;
  out.reserve(s.size());
  const size_t n = s.size();
  size_t i = 0;
  while (i < n) {
    if (s[i] != U'&') {
      out.push_back(s[i++]);
      continue;
    }
    // _charref = &(#[0-9]+;? | #[xX][0-9a-fA-F]+;? | [^\t\n\f <&#;]{1,32};?)
    size_t j = i + 1;
    if (j < n && s[j] == U'#') {
      const bool hex = j + 1 < n && (s[j + 1] == U'x' || s[j + 1] == U'X');
      size_t k = j + 1;
      if (!hex && k < n && is_ascii_digit(s[k])) {
        uint64_t v = 0;
        while (k < n && is_ascii_digit(s[k])) {
          v = std::min<uint64_t>(v * 10 + (s[k] - U'0'), 0x110000);
          ++k;
        }
        if (k < n && s[k] == U';') ++k;
        append_numeric_charref(out, v);
        i = k;
        continue;
      }
      if (hex && k + 1 < n && is_ascii_hex(s[k + 1])) {
        ++k;
        uint64_t v = 0;
        while (k < n && is_ascii_hex(s[k])) {
          const char32_t c = s[k];
          const uint64_t d = is_ascii_digit(c) ? c - U'0' : (c | 0x20) - U'a' + 10;
          v = std::min<uint64_t>(v * 16 + d, 0x110000);
          ++k;
        }
        if (k < n && s[k] == U';') ++k;
        append_numeric_charref(out, v);
        i = k;
        continue;
      }
      out.push_back(s[i++]);  // no reference starts here
      continue;
    }
    size_t k = j;
    while (k < n && k - j < 32) {
      const char32_t c = s[k];
      if (c == U'\t' || c == U'\n' || c == U'\f' || c == U' ' || c == U'<' || c == U'&' ||
          c == U'#' || c == U';') {
        break;
      }
      ++k;
    }
    if (k == j) {
      out.push_back(s[i++]);
      continue;
    }
    if (k < n && s[k] == U';') ++k;
    const U32 name = s.substr(j, k - j);
    i = k;
    const std::string name8 = u32_to_utf8(name);
    if (const auto* v = find_entity(html5_entities(), name8)) {
      append_utf8_value(out, v);
      continue;
    }
    // The longest prefix (at least 2 code points) that is an entity name.
    bool found = false;
    for (size_t x = name.size() - 1; x > 1 && !found; --x) {
      const std::string prefix = u32_to_utf8(name.substr(0, x));
      if (const auto* v = find_entity(html5_entities(), prefix)) {
        append_utf8_value(out, v);
        out += name.substr(x);
        found = true;
      }
    }
    if (!found) {
      out.push_back(U'&');
      out += name;
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// ftfy 6.3.1 fixers (ftfy/fixes.py, ftfy/chardata.py)

// fixes.unescape_html: HTML_ENTITY_RE = &#?[0-9A-Za-z]{1,24};
U32 ftfy_unescape_html(const U32& s) {
  U32 out;
  out.reserve(s.size());
  const size_t n = s.size();
  size_t i = 0;
  while (i < n) {
    if (s[i] != U'&') {
      out.push_back(s[i++]);
      continue;
    }
    size_t j = i + 1;
    if (j < n && s[j] == U'#') ++j;
    size_t k = j;
    while (k < n && is_ascii_alnum(s[k])) ++k;
    if (k == j || k - j > 24 || k >= n || s[k] != U';') {
      out.push_back(s[i++]);
      continue;
    }
    const U32 text = s.substr(i, k + 1 - i);
    i = k + 1;
    const std::string text8 = u32_to_utf8(text);
    if (const auto* v = find_entity(ftfy_entities(), text8)) {
      append_utf8_value(out, v);
    } else if (text[1] == U'#') {
      // Keep it unless html.unescape consumed the whole reference, semicolon included.
      const U32 unescaped = html_unescape(text);
      out += unescaped.find(U';') == U32::npos ? unescaped : text;
    } else {
      out += text;
    }
  }
  return out;
}

// str.translate: `map` appends what each code point becomes.
template <typename Map>
U32 translate(const U32& s, Map map) {
  U32 out;
  out.reserve(s.size());
  for (char32_t c : s) map(c, out);
  return out;
}

U32 fix_c1_controls(const U32& s) {
  return translate(s, [](char32_t c, U32& out) {
    if (c >= 0x80 && c <= 0x9F) {
      append_utf8_value(out, find_cp(tables::kSloppyC1, tables::kSloppyC1Size, c));
    } else {
      out.push_back(c);
    }
  });
}

U32 translate_table(const U32& s, const tables::CodepointString* table, size_t size) {
  return translate(s, [&](char32_t c, U32& out) {
    if (const char* r = find_cp(table, size, c)) {
      append_utf8_value(out, r);
    } else {
      out.push_back(c);
    }
  });
}

U32 uncurl_quotes(const U32& s) {
  return translate(s, [](char32_t c, U32& out) {
    if (c == 0x02BC || (c >= 0x2018 && c <= 0x201B)) {
      out.push_back(U'\'');
    } else if (c >= 0x201C && c <= 0x201F) {
      out.push_back(U'"');
    } else {
      out.push_back(c);
    }
  });
}

U32 fix_line_breaks(const U32& s) {
  U32 out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    const char32_t c = s[i];
    if (c == U'\r') {
      out.push_back(U'\n');
      if (i + 1 < s.size() && s[i + 1] == U'\n') ++i;
    } else if (c == 0x2028 || c == 0x2029 || c == 0x85) {
      out.push_back(U'\n');
    } else {
      out.push_back(c);
    }
  }
  return out;
}

U32 fix_surrogates(const U32& s) {
  U32 out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    const char32_t c = s[i];
    if (c >= 0xD800 && c <= 0xDBFF && i + 1 < s.size() && s[i + 1] >= 0xDC00 &&
        s[i + 1] <= 0xDFFF) {
      out.push_back(0x10000 + ((c - 0xD800) << 10) + (s[i + 1] - 0xDC00));
      ++i;
    } else if (c >= 0xD800 && c <= 0xDFFF) {
      out.push_back(0xFFFD);
    } else {
      out.push_back(c);
    }
  }
  return out;
}

// ANSI_RE = \033\[((?:\d|;)*)([a-zA-Z]); Python's \d is any decimal digit (category Nd).
U32 remove_terminal_escapes(const U32& s) {
  U32 out;
  out.reserve(s.size());
  size_t i = 0;
  while (i < s.size()) {
    if (s[i] == 0x1B && i + 1 < s.size() && s[i + 1] == U'[') {
      size_t k = i + 2;
      while (k < s.size() &&
             (s[k] == U';' || u_charType(static_cast<UChar32>(s[k])) == U_DECIMAL_DIGIT_NUMBER)) {
        ++k;
      }
      if (k < s.size() && ((s[k] | 0x20) >= U'a' && (s[k] | 0x20) <= U'z')) {
        i = k + 1;
        continue;
      }
    }
    out.push_back(s[i++]);
  }
  return out;
}

U32 remove_control_chars(const U32& s) {
  return translate(s, [](char32_t c, U32& out) {
    if (!in_cp_list(tables::kControlChars, tables::kControlCharsSize, c)) out.push_back(c);
  });
}

// ftfy.fix_and_explain with the default config minus fix_encoding: all fixers until a fixpoint.
U32 ftfy_fix_segment(U32 text, bool unescape_html) {
  while (true) {
    const U32 orig = text;
    if (unescape_html) text = ftfy_unescape_html(text);
    text = fix_c1_controls(text);
    text = translate_table(text, tables::kLigatures, tables::kLigaturesSize);
    text = translate_table(text, tables::kWidthMap, tables::kWidthMapSize);
    text = uncurl_quotes(text);
    text = fix_line_breaks(text);
    text = fix_surrogates(text);
    text = remove_terminal_escapes(text);
    text = remove_control_chars(text);
    text = nfc(text);
    if (text == orig) return text;
  }
}

// ftfy.fix_text: fixes each line (segment ending in '\n') on its own; unescape_html='auto' turns
// off for the rest of the text once a segment contains '<'.
U32 ftfy_fix_text(const U32& text) {
  constexpr size_t kMaxDecodeLength = 1000000;
  U32 out;
  bool unescape_html = true;
  size_t pos = 0;
  while (pos < text.size()) {
    const size_t nl = text.find(U'\n', pos);
    size_t end = nl == U32::npos ? text.size() : nl + 1;
    end = std::min(end, pos + kMaxDecodeLength);
    const U32 segment = text.substr(pos, end - pos);
    if (segment.find(U'<') != U32::npos) unescape_html = false;
    out += ftfy_fix_segment(segment, unescape_html);
    pos = end;
  }
  return out;
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
  const char* py_env = std::getenv("CLIPREPRO_PYTHON");
#ifndef CLIPREPRO_DEFAULT_PYTHON
#define CLIPREPRO_DEFAULT_PYTHON "python3"
#endif
  const std::string python =
      py_env != nullptr && *py_env != '\0' ? py_env : CLIPREPRO_DEFAULT_PYTHON;
  const std::string cmd =
      "\"" + python +
      "\" -c \"import open_clip,os;print(os.path.join(os.path.dirname(open_clip.__file__),"
      "'bpe_simple_vocab_16e6.txt.gz'))\" 2>/dev/null";
  std::string path;
  if (std::FILE* p = popen(cmd.c_str(), "r")) {
    std::array<char, 4096> buf;
    while (std::fgets(buf.data(), static_cast<int>(buf.size()), p) != nullptr) path += buf.data();
    pclose(p);
  }
  while (!path.empty() && (path.back() == '\n' || path.back() == '\r')) path.pop_back();
  if (path.empty() || !readable(path)) {
    throw std::runtime_error(
        "ClipTokenizer: cannot find bpe_simple_vocab_16e6.txt.gz from open_clip_torch via '" +
        python +
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
