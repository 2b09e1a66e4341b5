// The element-wise metrics behind the parity tables (and compare): edge cases included.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <limits>

#include "harness/compare/tensor_diff.h"

namespace cliprepro {
namespace {

TEST(ElementwiseDiff, IdenticalTensorsAreBitwiseEqual) {
  auto a = torch::randn({3, 5});
  auto d = diff_tensors(a, a.clone());
  EXPECT_TRUE(d.bitwise_equal);
  EXPECT_EQ(d.differing, 0);
  EXPECT_EQ(d.max_ulp, 0);
  EXPECT_EQ(d.numel, 15);
}

TEST(ElementwiseDiff, OneUlpApartInEveryFormat) {
  for (auto dt : {torch::kFloat32, torch::kFloat16, torch::kBFloat16, torch::kFloat64}) {
    auto a = torch::tensor({1.0, -2.5, 0.0}).to(dt);
    auto b = a.clone();
    // Next representable value away from zero: the magnitude bits plus one.
    const auto int_type = a.element_size() == 8   ? torch::kInt64
                          : a.element_size() == 4 ? torch::kInt32
                                                  : torch::kInt16;
    b.view(int_type)[1] += 1;
    auto d = diff_tensors(a, b);
    EXPECT_FALSE(d.bitwise_equal) << dt;
    EXPECT_EQ(d.differing, 1) << dt;
    EXPECT_EQ(d.first_differing, 1) << dt;
    // float64 ULPs are counted on a halved line (overflow-safe): 1 step reads as 0 or 1.
    if (dt != torch::kFloat64) {
      EXPECT_EQ(d.max_ulp, 1) << dt;
    }
    EXPECT_GT(d.max_abs, 0.0);
  }
}

TEST(ElementwiseDiff, SignedZerosDifferInBitsButNotInUlpOrValue) {
  auto a = torch::tensor({0.0f}), b = torch::tensor({-0.0f});
  auto d = diff_tensors(a, b);
  EXPECT_FALSE(d.bitwise_equal);
  EXPECT_EQ(d.max_ulp, 0);
  EXPECT_EQ(d.max_abs, 0.0);
  EXPECT_EQ(d.max_rel, 0.0);
}

TEST(ElementwiseDiff, UlpDistanceCrossesZeroSignAware) {
  const float tiny = std::numeric_limits<float>::denorm_min();
  EXPECT_EQ(ulp_distance_f32(tiny, -tiny), 2);
  EXPECT_EQ(ulp_distance_f32(0.0f, tiny), 1);
  EXPECT_EQ(ulp_distance_f32(1.0f, std::nextafter(1.0f, 2.0f)), 1);
  auto d = diff_tensors(torch::tensor({tiny}), torch::tensor({-tiny}));
  EXPECT_EQ(d.max_ulp, 2);  // subnormals: two steps through zero
}

TEST(ElementwiseDiff, NansAreEqualToNansAndInfinitelyFarFromNumbers) {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  auto both = diff_tensors(torch::tensor({nan, 1.0f}), torch::tensor({nan, 1.0f}));
  EXPECT_TRUE(both.bitwise_equal);
  auto one = diff_tensors(torch::tensor({nan, 1.0f}), torch::tensor({2.0f, 1.0f}));
  EXPECT_FALSE(one.bitwise_equal);
  EXPECT_TRUE(std::isinf(one.max_abs));
  EXPECT_EQ(one.max_ulp, std::numeric_limits<int64_t>::max());
  // Differently encoded NaNs: bits differ, values agree.
  auto payload = torch::tensor({nan});
  payload.view(torch::kInt32)[0] = 0x7fc00001;
  auto nans = diff_tensors(torch::tensor({nan}), payload);
  EXPECT_FALSE(nans.bitwise_equal);
  EXPECT_EQ(nans.max_ulp, 0);
  EXPECT_EQ(nans.max_abs, 0.0);
}

TEST(ElementwiseDiff, InfinitiesOfTheSameSignAreEqualValues) {
  const float inf = std::numeric_limits<float>::infinity();
  auto same = diff_tensors(torch::tensor({inf, -inf}), torch::tensor({inf, -inf}));
  EXPECT_TRUE(same.bitwise_equal);
  auto flipped = diff_tensors(torch::tensor({inf}), torch::tensor({-inf}));
  EXPECT_TRUE(std::isinf(flipped.max_abs));
}

TEST(ElementwiseDiff, RelativeErrorIsSafeAtZero) {
  auto d = diff_tensors(torch::tensor({0.0f, 4.0f}), torch::tensor({1e-30f, 5.0f}));
  EXPECT_DOUBLE_EQ(d.max_rel, 1.0);  // 1e-30 vs 0: |a-b|/max(|a|,|b|) = 1
  EXPECT_NEAR(d.max_abs, 1.0, 1e-12);
}

TEST(ElementwiseDiff, EmptyAndShapeMismatch) {
  auto e = diff_tensors(torch::empty({0, 3}), torch::empty({0, 3}));
  EXPECT_TRUE(e.bitwise_equal);
  EXPECT_EQ(e.numel, 0);
  auto m = diff_tensors(torch::zeros({2}), torch::zeros({3}));
  EXPECT_FALSE(m.same_shape);
  EXPECT_FALSE(m.bitwise_equal);
}

TEST(ElementwiseDiff, IntegersReportAbsoluteDifference) {
  auto d = diff_tensors(torch::tensor(std::vector<int64_t>{1, 7}),
                        torch::tensor(std::vector<int64_t>{1, 4}));
  EXPECT_EQ(d.differing, 1);
  EXPECT_EQ(d.max_ulp, 3);
}

TEST(ElementwiseDiff, TableListsEveryRow) {
  auto d = diff_tensors(torch::tensor({1.0f}), torch::tensor({2.0f}));
  auto s = format_diff_table({{"grads/x", d}, {"loss", ElementwiseDiff{}}}, {"float32", "float32"});
  EXPECT_NE(s.find("grads/x"), std::string::npos);
  EXPECT_NE(s.find("loss"), std::string::npos);
  EXPECT_NE(s.find("max_ulp"), std::string::npos);
}

}  // namespace
}  // namespace cliprepro
