// Synthetic data and the word tokenizer: determinism, layout, caption/label agreement.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <set>

#include "src/data/synthetic_shapes.h"
#include "src/data/word_tokenizer.h"

namespace cliprepro {
namespace {

TEST(WordTokenizer, ClipLayoutSotEotPaddingTruncation) {
  WordTokenizer tok({"a", "red", "circle"}, 16, 6);
  auto t = tok.encode("a red circle");
  EXPECT_EQ(t.sizes(), (std::vector<int64_t>{6}));
  EXPECT_TRUE(torch::equal(t, torch::tensor({14, 1, 2, 3, 15, 0}, torch::kInt64)));
  auto long_t = tok.encode("a red circle a red circle");
  EXPECT_EQ(long_t[5].item<int64_t>(), 15);  // EOT kept last
  EXPECT_EQ(long_t.argmax().item<int64_t>(), 5);
  EXPECT_THROW(tok.encode("a blue circle"), std::runtime_error);
}

TEST(SyntheticShapes, SampleIsPureFunctionOfSeedAndId) {
  SyntheticShapes a(32, 7, 0), b(32, 7, 0), other_seed(32, 8, 0), held_out(32, 7, 1);
  std::string ca, cb;
  auto ia = a.render(11, &ca, nullptr);
  auto ib = b.render(11, &cb, nullptr);
  EXPECT_TRUE(torch::equal(ia, ib));
  EXPECT_EQ(ca, cb);
  EXPECT_FALSE(torch::equal(ia, other_seed.render(11, nullptr, nullptr)));
  EXPECT_FALSE(torch::equal(ia, held_out.render(11, nullptr, nullptr)));
  EXPECT_EQ(ia.scalar_type(), torch::kUInt8);
}

TEST(SyntheticShapes, CaptionNamesTheLabelAndAllClassesOccur) {
  SyntheticShapes d(64, 0, 0);
  std::set<int64_t> seen;
  for (int64_t id = 0; id < 400; ++id) {
    std::string cap;
    int64_t label = -1;
    d.render(id, &cap, &label);
    seen.insert(label);
    const auto n = int64_t(SyntheticShapes::shapes().size());
    EXPECT_NE(cap.find(SyntheticShapes::colours()[size_t(label / n)] + " " +
                       SyntheticShapes::shapes()[size_t(label % n)]),
              std::string::npos)
        << cap;
  }
  EXPECT_EQ(int64_t(seen.size()), SyntheticShapes::num_classes());
}

TEST(SyntheticShapes, BatchIsNormalisedAndTokenised) {
  SyntheticShapes d(64, 0, 0);
  WordTokenizer tok(SyntheticShapes::vocabulary(), 64, 16);
  auto b = d.batch({3, 1, 4}, tok);
  EXPECT_EQ(b.images.sizes(), (std::vector<int64_t>{3, 3, 64, 64}));
  EXPECT_EQ(b.tokens.sizes(), (std::vector<int64_t>{3, 16}));
  EXPECT_TRUE(torch::equal(b.sample_ids, torch::tensor({3, 1, 4}, torch::kInt64)));
  EXPECT_LT(b.images.min().item<float>(), -1.0f);  // (0 - mean) / std
  EXPECT_GT(b.images.max().item<float>(), 1.0f);
}

TEST(SeededPermutation, DeterministicAndComplete) {
  auto p = seeded_permutation(100, 42);
  EXPECT_EQ(p, seeded_permutation(100, 42));
  EXPECT_NE(p, seeded_permutation(100, 43));
  std::set<int64_t> s(p.begin(), p.end());
  EXPECT_EQ(s.size(), 100u);
  EXPECT_EQ(*s.begin(), 0);
  EXPECT_EQ(*s.rbegin(), 99);
}

}  // namespace
}  // namespace cliprepro
