#include "src/data/clip_tokenizer.h"

#include <stdexcept>

namespace cliprepro {

ClipTokenizer::ClipTokenizer(const std::string& bpe_path) {
  throw std::runtime_error("ClipTokenizer: not implemented yet (" + bpe_path + ")");
}

torch::Tensor ClipTokenizer::tokenize(const std::vector<std::string>&, int64_t) const { return {}; }

}  // namespace cliprepro
