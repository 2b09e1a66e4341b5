// CLIP's byte-level BPE tokenizer (OpenAI CLIP / OpenCLIP SimpleTokenizer). Placeholder: being written.
#pragma once
#include <torch/types.h>

#include <string>
#include <vector>

namespace cliprepro {

class ClipTokenizer {
 public:
  explicit ClipTokenizer(const std::string& bpe_path);
  torch::Tensor tokenize(const std::vector<std::string>& texts, int64_t context_length = 77) const;
};

}  // namespace cliprepro
