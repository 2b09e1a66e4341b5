#include "src/data/word_tokenizer.h"

#include <sstream>
#include <stdexcept>

namespace cliprepro {

WordTokenizer::WordTokenizer(std::vector<std::string> words, int64_t vocab_size,
                             int64_t context_length)
    : vocab_size_(vocab_size), context_length_(context_length) {
  if (static_cast<int64_t>(words.size()) + 3 > vocab_size) {
    throw std::runtime_error("word tokenizer: " + std::to_string(words.size()) +
                             " words do not fit vocab_size " + std::to_string(vocab_size));
  }
  if (context_length < 2) throw std::runtime_error("word tokenizer: context_length < 2");
  for (size_t i = 0; i < words.size(); ++i) ids_.emplace(words[i], static_cast<int64_t>(i) + 1);
}

torch::Tensor WordTokenizer::encode(const std::string& caption) const {
  std::vector<int64_t> ids{sot()};
  std::istringstream in(caption);
  for (std::string w; in >> w;) {
    auto it = ids_.find(w);
    if (it == ids_.end()) throw std::runtime_error("word tokenizer: unknown word '" + w + "'");
    ids.push_back(it->second);
  }
  ids.push_back(eot());
  if (static_cast<int64_t>(ids.size()) > context_length_) {
    ids.resize(context_length_);
    ids.back() = eot();
  }
  auto t = torch::zeros({context_length_}, torch::kInt64);
  auto* p = t.data_ptr<int64_t>();
  for (size_t i = 0; i < ids.size(); ++i) p[i] = ids[i];
  return t;
}

torch::Tensor WordTokenizer::encode_batch(const std::vector<std::string>& captions) const {
  std::vector<torch::Tensor> rows;
  rows.reserve(captions.size());
  for (const auto& c : captions) rows.push_back(encode(c));
  return torch::stack(rows);
}

}  // namespace cliprepro
