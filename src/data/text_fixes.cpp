#include "src/data/text_fixes.h"

#include <unicode/uchar.h>

#include <algorithm>
#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>

#include "src/data/clip_tokenizer_tables.h"

namespace cliprepro::text_fixes {

namespace tables = clip_tables;
using namespace py_unicode;

namespace {

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

}  // namespace

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

namespace {

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

}  // namespace

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

}  // namespace cliprepro::text_fixes
