// Escaping text for the HTML, SVG and JUnit XML that reports and compare write.
#pragma once
#include <string>

namespace cliprepro {

// &, <, >, " and ' as entities; control characters XML 1.0 forbids even escaped become '?'.
// Valid in XML attributes and text and in HTML5.
std::string markup_escape(const std::string& s);

}  // namespace cliprepro
