#include "harness/report/markup.h"

namespace cliprepro {

std::string markup_escape(const std::string& s) {
  std::string o;
  o.reserve(s.size());
  for (const char ch : s) {
    switch (ch) {
      case '&':
        o += "&amp;";
        break;
      case '<':
        o += "&lt;";
        break;
      case '>':
        o += "&gt;";
        break;
      case '"':
        o += "&quot;";
        break;
      case '\'':
        o += "&apos;";
        break;
      default:
        o += (static_cast<unsigned char>(ch) < 0x20 && ch != '\t' && ch != '\n' && ch != '\r') ? '?'
                                                                                               : ch;
    }
  }
  return o;
}

}  // namespace cliprepro
