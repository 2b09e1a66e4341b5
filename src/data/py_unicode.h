// Python str semantics CLIP's tokenizer relies on, on UTF-32 code points (like Python str):
// UTF-8 <-> UTF-32, unicodedata.normalize("NFC"), str.lower(), str.isspace().
#pragma once
#include <string>
#include <string_view>

namespace cliprepro::py_unicode {

using U32 = std::u32string;

// Invalid UTF-8 becomes U+FFFD per bad byte (inputs from Python are always valid).
U32 utf8_to_u32(std::string_view s);
void append_utf8(std::string& out, char32_t cp);
std::string u32_to_utf8(const U32& s);

// unicodedata.normalize("NFC", s)
U32 nfc(const U32& s);
// str.lower(): full lowercase mappings with Final_Sigma, no locale tailoring (ICU root locale).
U32 py_lower(const U32& s);
// str.isspace() / str.split() / str.strip(): bidi class WS, B or S, or category Zs.
bool py_isspace(char32_t c);

}  // namespace cliprepro::py_unicode
