// CLIP's byte-level BPE tokenizer, a port of OpenCLIP's SimpleTokenizer (clean='lower') that must
// give the same ids as open_clip.tokenize: ftfy.fix_text + html.unescape cleanup, whitespace
// collapsing, lowercasing, the `regex` split pattern, byte-level BPE over the 49408-token
// vocabulary, SOT/EOT, truncation keeping EOT last, zero padding. See docs/tokenizer.md.
#pragma once
#include <torch/types.h>

#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

namespace cliprepro {

class ClipTokenizer {
 public:
  static constexpr int64_t kVocabSize = 49408;
  static constexpr int64_t kSotId = 49406;
  static constexpr int64_t kEotId = 49407;
  static constexpr int64_t kDefaultContextLength = 77;

  // Reads the gzip'd merges file (bpe_simple_vocab_16e6.txt.gz); throws std::runtime_error
  // naming the file if it cannot be read or is malformed.
  explicit ClipTokenizer(const std::string& bpe_path);

  // The vocabulary shipped in the installed open_clip_torch wheel: $CLIPREPRO_BPE_VOCAB if set,
  // else asked from $CLIPREPRO_PYTHON (default: the project
  // Python the build was configured with). Throws if neither gives a readable file.
  static std::string default_bpe_path();

  // open_clip's cleanup (clean='lower'): ftfy.fix_text, html.unescape twice, strip, whitespace
  // collapsed to single spaces, lowercased. UTF-8 in and out.
  static std::string clean(const std::string& utf8_text);

  // Token ids of the cleaned text, without SOT/EOT.
  std::vector<int64_t> encode(const std::string& utf8_text) const;

  // int64 (texts.size(), context_length): SOT, ids, EOT, zero padded; over-long rows are cut to
  // context_length with EOT written over the last slot, exactly as open_clip.tokenize.
  torch::Tensor tokenize(const std::vector<std::string>& texts,
                         int64_t context_length = kDefaultContextLength) const;

  // Ids back to text ('</w>' becomes a space). Invalid UTF-8 byte runs become U+FFFD; not
  // checked against Python byte for byte.
  std::string decode(const std::vector<int64_t>& ids) const;

  int64_t sot() const { return kSotId; }
  int64_t eot() const { return kEotId; }
  int64_t vocab_size() const { return static_cast<int64_t>(decoder_.size()); }

 private:
  void bpe(const std::string& token_bytes, std::vector<int64_t>& out) const;

  std::vector<std::string> byte_encoder_;  // byte -> UTF-8 of its printable stand-in
  std::unordered_map<std::string, int> byte_decoder_;
  std::unordered_map<std::string, int64_t> encoder_;
  std::vector<std::string> decoder_;
  std::unordered_map<std::string, int> bpe_ranks_;  // key: first + ' ' + second
};

}  // namespace cliprepro
