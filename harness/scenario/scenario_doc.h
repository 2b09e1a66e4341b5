// docs/scenario-schema.md's key tables, generated from scenario_keys() (and the study keys,
// harness/scenario/study.h): each section's table
// sits between "<!-- keys: SECTION -->" and "<!-- /keys -->" (SECTION "top" = top-level keys).
#pragma once
#include <string>

namespace cliprepro {

// One section's markdown table (section "" = top level).
std::string key_table_markdown(const std::string& section);

// `doc` with every generated block rewritten from the table. Throws std::runtime_error when a
// section of the table has no block or a block names no section.
std::string update_schema_doc(const std::string& doc);

}  // namespace cliprepro
