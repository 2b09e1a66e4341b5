#include "src/data/py_unicode.h"

#include <unicode/uchar.h>
#include <unicode/unorm2.h>
#include <unicode/ustring.h>

#include <array>
#include <stdexcept>
#include <vector>

namespace cliprepro::py_unicode {

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

namespace {

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

}  // namespace

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

}  // namespace cliprepro::py_unicode
