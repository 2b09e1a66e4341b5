#include "src/data/csv_dataset.h"

#include <algorithm>
#include <array>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string_view>

#include "src/data/image_decode.h"

namespace cliprepro {
namespace {

// pandas' default na_values: such a field becomes NaN, and str(NaN) is "nan" in OpenCLIP.
bool is_pandas_na(const std::string& s) {
  static constexpr std::array<std::string_view, 19> kNa{
      "",     "#N/A",   "#N/A N/A", "#NA",  "-1.#IND", "-1.#QNAN", "-NaN",
      "-nan", "1.#IND", "1.#QNAN",  "<NA>", "N/A",     "NA",       "NULL",
      "NaN",  "None",   "n/a",      "nan",  "null"};
  return std::find(kNa.begin(), kNa.end(), std::string_view(s)) != kNa.end();
}

}  // namespace

std::vector<std::vector<std::string>> parse_csv(const std::string& text, char separator,
                                                const std::string& name) {
  std::vector<std::vector<std::string>> rows;
  std::vector<std::string> row;
  std::string field;
  bool in_quotes = false, row_has_content = false;
  size_t line = 1, quote_line = 0;
  auto end_field = [&] {
    row.push_back(field);
    field.clear();
  };
  auto end_row = [&] {
    end_field();
    if (row_has_content) rows.push_back(row);  // pandas skips blank lines
    row.clear();
    row_has_content = false;
  };
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (in_quotes) {
      if (c == '"') {
        if (i + 1 < text.size() && text[i + 1] == '"') {
          field += '"';
          ++i;
        } else {
          in_quotes = false;
        }
      } else {
        if (c == '\n') ++line;
        field += c;
      }
      continue;
    }
    if (c == '"' && field.empty()) {
      in_quotes = true;
      row_has_content = true;
      quote_line = line;
    } else if (c == separator) {
      row_has_content = true;
      end_field();
    } else if (c == '\n' || c == '\r') {
      if (c == '\r' && i + 1 < text.size() && text[i + 1] == '\n') ++i;
      ++line;
      end_row();
    } else {
      row_has_content = true;
      field += c;
    }
  }
  if (in_quotes) {
    throw std::runtime_error(name + ": unterminated quoted field starting on line " +
                             std::to_string(quote_line));
  }
  if (!field.empty() || !row.empty() || row_has_content) end_row();
  return rows;
}

CsvDataset::CsvDataset(const std::string& csv_path, const CsvOptions& options)
    : csv_path_(csv_path), options_(options) {
  std::ifstream in(csv_path, std::ios::binary);
  if (!in) throw std::runtime_error(csv_path + ": cannot open CSV file");
  std::stringstream ss;
  ss << in.rdbuf();
  const auto rows = parse_csv(ss.str(), options.separator, csv_path);
  if (rows.empty()) throw std::runtime_error(csv_path + ": empty CSV (no header row)");
  const auto& header = rows[0];
  auto column = [&](const std::string& key) {
    const auto it = std::find(header.begin(), header.end(), key);
    if (it == header.end()) {
      std::string cols;
      for (const auto& h : header) cols += (cols.empty() ? "'" : ", '") + h + "'";
      throw std::runtime_error(csv_path + ": no column '" + key + "' in the header (columns: " +
                               cols + "); check the separator and --csv-img-key/--csv-caption-key");
    }
    return size_t(it - header.begin());
  };
  const size_t img_col = column(options.img_key), cap_col = column(options.caption_key);
  for (size_t r = 1; r < rows.size(); ++r) {
    if (rows[r].size() != header.size()) {
      throw std::runtime_error(csv_path + ": data row " + std::to_string(r) + " has " +
                               std::to_string(rows[r].size()) + " fields, the header has " +
                               std::to_string(header.size()));
    }
    const auto& img = rows[r][img_col];
    const auto& cap = rows[r][cap_col];
    images_.push_back(is_pandas_na(img) ? "nan" : img);
    captions_.push_back(is_pandas_na(cap) ? "nan" : cap);
    lines_.push_back(r + 1);
  }
}

std::string CsvDataset::resolved_path(size_t i) const {
  const std::string& p = images_.at(i);
  if (options_.base_dir.empty() || (!p.empty() && p[0] == '/')) return p;
  return options_.base_dir + "/" + p;
}

std::string CsvDataset::source(size_t i) const {
  return csv_path_ + " row " + std::to_string(i + 1) + " (" + resolved_path(i) + ")";
}

RawSample CsvDataset::get(size_t i) const {
  RawSample s;
  s.key = images_.at(i);
  s.caption = captions_.at(i);
  const std::string path = resolved_path(i);
  s.source = source(i);
  try {
    s.image_bytes = read_binary_file(path);
  } catch (const std::exception& e) {
    throw std::runtime_error(s.source + ": " + e.what());
  }
  return s;
}

}  // namespace cliprepro
