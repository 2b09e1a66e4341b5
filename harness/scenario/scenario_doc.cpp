#include "harness/scenario/scenario_doc.h"

#include <set>
#include <stdexcept>

#include "harness/scenario/scenario.h"
#include "harness/scenario/study.h"

namespace cliprepro {
namespace {

constexpr const char* kOpen = "<!-- keys: ";
constexpr const char* kClose = "<!-- /keys -->";

std::string block_name(const std::string& section) { return section.empty() ? "top" : section; }

std::string cell(std::string text) {  // a table cell: pipes escaped
  std::string out;
  for (char c : text) out += c == '|' ? std::string("\\|") : std::string(1, c);
  return out;
}

template <class Root>
std::string default_text(const ConfigKey<Root>& k) {
  if (!k.default_doc.empty()) return k.default_doc;
  const auto v = k.get(Root{});
  if (v.is_null()) return "—";
  return "`" + v.dump() + "`";
}

template <class Root>
std::string type_text(const ConfigKey<Root>& k) {
  if (k.choices.empty()) return value_type_name(k.type);
  std::string s;
  size_t start = 0;
  while (start <= k.choices.size()) {  // "a, b" -> "`a`, `b`"
    const auto comma = k.choices.find(", ", start);
    const auto name =
        k.choices.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
    s += (s.empty() ? "" : ", ") + ("`" + name + "`");
    if (comma == std::string::npos) break;
    start = comma + 2;
  }
  return "one of " + s;
}

template <class Root>
void add_rows(std::string& t, const std::vector<ConfigKey<Root>>& keys,
              const std::string& section) {
  for (const auto& k : keys) {
    if (k.section != section) continue;
    t += "| `" + k.key + "` | " + type_text(k) + " | " + cell(default_text(k)) + " | " +
         (k.has(kTrajectory) ? "✓" : "") + " | `" + k.member + "` | " + cell(k.doc) + " |\n";
  }
}

}  // namespace

std::string key_table_markdown(const std::string& section) {
  std::string t =
      "| key | type | default | resume must match | C++ member | meaning |\n"
      "|---|---|---|---|---|---|\n";
  add_rows(t, scenario_keys(), section);
  add_rows(t, study_keys(), section);
  add_rows(t, variant_launch_keys(), section);
  add_rows(t, report_keys(), section);
  return t;
}

std::string update_schema_doc(const std::string& doc) {
  std::set<std::string> sections, seen;
  for (const auto& k : scenario_keys()) sections.insert(block_name(k.section));
  for (const auto& k : study_keys()) sections.insert(block_name(k.section));
  for (const auto& k : variant_launch_keys()) sections.insert(block_name(k.section));
  for (const auto& k : report_keys()) sections.insert(block_name(k.section));
  std::string out;
  size_t pos = 0;
  while (true) {
    const auto open = doc.find(kOpen, pos);
    if (open == std::string::npos) break;
    const auto name_end = doc.find(" -->", open);
    const auto close = doc.find(kClose, open);
    if (name_end == std::string::npos || close == std::string::npos)
      throw std::runtime_error("unterminated generated block at offset " + std::to_string(open));
    const std::string name =
        doc.substr(open + std::string(kOpen).size(), name_end - open - std::string(kOpen).size());
    if (!sections.count(name))
      throw std::runtime_error("generated block '" + name + "' names no section of the table");
    seen.insert(name);
    out += doc.substr(pos, name_end + 4 - pos) + "\n" +
           key_table_markdown(name == "top" ? "" : name) + kClose;
    pos = close + std::string(kClose).size();
  }
  out += doc.substr(pos);
  for (const auto& s : sections) {
    if (!seen.count(s))
      throw std::runtime_error("no generated block for section '" + s + "' (add \"" + kOpen + s +
                               " -->\" ... \"" + kClose + "\")");
  }
  return out;
}

}  // namespace cliprepro
