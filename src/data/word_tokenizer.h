// Word-level tokenizer for the synthetic captions, laid out like CLIP's: 0 = pad,
// SOT = vocab_size-2, EOT = vocab_size-1 (EOT must be the largest id: text pooling uses argmax).
// Replaced by the CLIP BPE tokenizer for real data.
#pragma once
#include <torch/types.h>

#include <string>
#include <unordered_map>
#include <vector>

namespace cliprepro {

class WordTokenizer {
 public:
  WordTokenizer(std::vector<std::string> words, int64_t vocab_size, int64_t context_length);
  // (context_length,) int64: SOT, words..., EOT, zero padding; truncation keeps EOT last.
  torch::Tensor encode(const std::string& caption) const;
  torch::Tensor encode_batch(const std::vector<std::string>& captions) const;
  int64_t sot() const { return vocab_size_ - 2; }
  int64_t eot() const { return vocab_size_ - 1; }

 private:
  std::unordered_map<std::string, int64_t> ids_;
  int64_t vocab_size_, context_length_;
};

}  // namespace cliprepro
