// Data tables for CLIP's tokenizer cleanup, generated from Python's html, ftfy and regex modules
// by scripts/gen_clip_tokenizer_tables.py (see there for what each table is).
#pragma once
#include <cstddef>

namespace cliprepro::clip_tables {

struct StringPair {
  const char* key;
  const char* value;  // UTF-8
};
struct CodepointString {
  char32_t code_point;
  const char* value;  // UTF-8
};
// What the `regex` module (IGNORECASE) lets one code point match in CLIP's split pattern.
enum class TokenClass : unsigned char { kLetter, kNumber, kOther, kSpace, kNone };
struct ClassRange {
  char32_t first;
  char32_t last;
  TokenClass token_class;
};
struct CaseVariant {
  char ascii_letter;
  char32_t code_point;  // matches ascii_letter under IGNORECASE
};

// All sorted by key / code point.
extern const StringPair kHtml5Entities[];  // html.entities.html5, names without '&'
extern const std::size_t kHtml5EntitiesSize;
extern const StringPair kFtfyEntities[];  // ftfy.chardata.HTML_ENTITIES, "&name;" keys
extern const std::size_t kFtfyEntitiesSize;
extern const CodepointString kInvalidCharrefs[];  // html._invalid_charrefs
extern const std::size_t kInvalidCharrefsSize;
extern const char32_t kInvalidCodepoints[];  // html._invalid_codepoints
extern const std::size_t kInvalidCodepointsSize;
extern const CodepointString kLigatures[];  // ftfy.chardata.LIGATURES
extern const std::size_t kLigaturesSize;
extern const CodepointString kWidthMap[];  // ftfy.chardata.WIDTH_MAP
extern const std::size_t kWidthMapSize;
extern const char32_t kControlChars[];  // ftfy.chardata.CONTROL_CHARS
extern const std::size_t kControlCharsSize;
extern const CodepointString kSloppyC1[];  // U+0080..U+009F as sloppy-windows-1252 bytes
extern const std::size_t kSloppyC1Size;
extern const ClassRange kTokenClassRanges[];  // covers U+0000..U+10FFFF
extern const std::size_t kTokenClassRangesSize;
extern const CaseVariant kCaseVariants[];
extern const std::size_t kCaseVariantsSize;

}  // namespace cliprepro::clip_tables
