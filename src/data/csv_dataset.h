// OpenCLIP's CsvDataset (--dataset-type csv): pd.read_csv(path, sep=sep), then the image at
// str(df[img_key][i]) (opened as written, i.e. relative to the working directory, like
// Image.open) and the caption str(df[caption_key][i]).
#pragma once
#include <string>
#include <vector>

#include "src/data/raw_sample.h"

namespace cliprepro {

struct CsvOptions {
  std::string img_key = "filepath";
  std::string caption_key = "title";
  char separator = '\t';
  // Prefix for relative image paths. Empty = as written (OpenCLIP's behaviour: relative to the
  // process's working directory). Set it to the CSV's directory to make a list relocatable.
  std::string base_dir;
};

// Splits CSV text into records with pandas' default dialect: '"' quoting with "" escapes,
// fields may span lines, blank lines skipped, "\r\n" accepted.
std::vector<std::vector<std::string>> parse_csv(const std::string& text, char separator,
                                                const std::string& name);

class CsvDataset {
 public:
  // Throws std::runtime_error naming the file for unreadable files, a missing column or a row
  // with the wrong number of fields.
  CsvDataset(const std::string& csv_path, const CsvOptions& options = {});

  size_t size() const { return images_.size(); }
  const std::string& image_path(size_t i) const { return images_.at(i); }
  const std::string& caption(size_t i) const { return captions_.at(i); }
  // Path to open: base_dir joined with a relative image path.
  std::string resolved_path(size_t i) const;
  // Reads the image file; throws naming the CSV row and the image file if it cannot be read.
  RawSample get(size_t i) const;
  // Where sample i comes from, as error messages name it: "list.csv row 12 (path/img.jpg)".
  std::string source(size_t i) const;

 private:
  std::string csv_path_;
  CsvOptions options_;
  std::vector<std::string> images_, captions_;
  std::vector<size_t> lines_;  // 1-based line of each row, for messages
};

}  // namespace cliprepro
