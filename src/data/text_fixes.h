// The cleanup open_clip's tokenizer runs before splitting: html.unescape (Python 3.11) and
// ftfy.fix_text (6.3.1) minus its mojibake repair, on UTF-32 code points.
#pragma once
#include "src/data/py_unicode.h"

namespace cliprepro::text_fixes {

// html.unescape(s)
py_unicode::U32 html_unescape(const py_unicode::U32& s);

// ftfy.fix_text(s) with the default config minus fix_encoding (see clip_tokenizer.cpp's header
// for the known gap): each line fixed on its own until a fixpoint.
py_unicode::U32 ftfy_fix_text(const py_unicode::U32& text);

}  // namespace cliprepro::text_fixes
