// Per-tensor statistics: definitions on hand-computed values, special values, device path.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <xxhash.h>

#include <bit>
#include <cmath>
#include <limits>

#include "harness/log/device_digest.h"
#include "harness/log/digest.h"
#include "harness/log/digest_stats.h"
#include "harness/log/tensor_stats.h"

namespace cliprepro {
namespace {

TEST(TensorStats, FiniteValuesCountsAndMoments) {
  const float inf = std::numeric_limits<float>::infinity();
  auto t = torch::tensor({1.0f, -3.0f, 0.0f, 2.0f, std::nanf(""), inf, -0.0f});
  const auto s = tensor_stats(t);
  EXPECT_EQ(s.nan, 1);
  EXPECT_EQ(s.inf, 1);
  EXPECT_EQ(s.zero, 2);  // +0 and -0
  EXPECT_EQ(s.min, -3.0);
  EXPECT_EQ(s.max, 2.0);
  EXPECT_DOUBLE_EQ(s.mean, 0.0);                   // (1 - 3 + 0 + 2 + 0) / 5
  EXPECT_DOUBLE_EQ(s.std, std::sqrt(14.0 / 5.0));  // population std
  EXPECT_DOUBLE_EQ(s.l2, std::sqrt(14.0));
}

TEST(TensorStats, EmptyAndAllNonFinite) {
  const auto e = tensor_stats(torch::empty({0}));
  EXPECT_TRUE(std::isnan(e.min));
  EXPECT_EQ(e.l2, 0.0);
  const auto n = tensor_stats(torch::full({3}, std::nanf("")));
  EXPECT_EQ(n.nan, 3);
  EXPECT_TRUE(std::isnan(n.mean));
}

TEST(TensorStats, LowPrecisionAndIntegerDtypes) {
  auto h = torch::tensor({0.5f, 65504.0f}).to(torch::kFloat16);
  EXPECT_EQ(tensor_stats(h).max, 65504.0);
  auto b = torch::tensor({1.0f, -2.0f}).to(torch::kBFloat16);
  EXPECT_EQ(tensor_stats(b).min, -2.0);
  auto i = torch::tensor(std::vector<int64_t>{4, 0, -4});
  EXPECT_EQ(tensor_stats(i).zero, 1);
  EXPECT_DOUBLE_EQ(tensor_stats(i).l2, std::sqrt(32.0));
}

TEST(TensorStats, DevicePathAgreesWithHostPath) {
  // The torch-op path is what CUDA tensors use; on CPU it runs for dtypes the host loop does
  // not handle (int16), and on CUDA when a device is present.
  torch::manual_seed(0);
  auto x = torch::randn({1000});
  x[3] = std::numeric_limits<float>::infinity();
  const auto host = tensor_stats(x);
  if (torch::cuda::is_available()) {
    const auto dev = tensor_stats(x.cuda());
    EXPECT_EQ(dev.min, host.min);
    EXPECT_EQ(dev.inf, host.inf);
    EXPECT_NEAR(dev.mean, host.mean, 1e-12);
    EXPECT_NEAR(dev.std, host.std, 1e-12);
  }
  auto s16 = torch::tensor({1, 0, -5}, torch::kInt16);
  const auto d = tensor_stats(s16);
  EXPECT_EQ(d.min, -5.0);
  EXPECT_EQ(d.zero, 1);
  EXPECT_DOUBLE_EQ(d.mean, -4.0 / 3.0);
}

}  // namespace
}  // namespace cliprepro

namespace cliprepro {
namespace {

TEST(DigestStats, FusedPassMatchesSeparateDigestAndStats) {
  torch::manual_seed(3);
  for (int64_t n : {1, 15, 16, 17, 16384, 16385, 100003}) {
    auto x = torch::randn({n}) * 3 + 7;
    if (n > 20) {
      x[n / 2] = std::numeric_limits<float>::quiet_NaN();  // forces the exact path for one block
      x[5] = 0.0f;
    }
    const auto fused = digest_and_stats(x, true);
    const auto ref = tensor_stats(x);
    EXPECT_EQ(fused.digest, tensor_digest(x)) << n;
    EXPECT_EQ(fused.stats.min, ref.min) << n;
    EXPECT_EQ(fused.stats.max, ref.max) << n;
    EXPECT_EQ(fused.stats.nan, ref.nan) << n;
    EXPECT_EQ(fused.stats.zero, ref.zero) << n;
    EXPECT_NEAR(fused.stats.mean, ref.mean, 1e-5 * std::abs(ref.mean)) << n;
    EXPECT_NEAR(fused.stats.std, ref.std, 1e-4 * ref.std + 1e-12) << n;
    EXPECT_NEAR(fused.stats.l2, ref.l2, 1e-5 * ref.l2) << n;
  }
}

TEST(DigestStats, Avx2AndBaselinePassesGiveTheSameBits) {
  if (!__builtin_cpu_supports("avx2")) GTEST_FAIL() << "this check needs a CPU with AVX2";
  torch::manual_seed(4);
  for (int64_t n : {1, 17, 16384, 50000, 1000003}) {
    // Wide dynamic range and exact zeros: rounding differences would show in s1/s2.
    auto x = torch::randn({n}) * torch::exp(torch::randn({n}) * 4);
    x.index_put_({torch::rand({n}) < 0.1}, 0.0f);
    if (n > 20) x[n - 3] = std::numeric_limits<float>::infinity();
    const auto a = digest_and_stats(x, true, SimdPath::kAuto);
    const auto b = digest_and_stats(x, true, SimdPath::kBaseline);
    EXPECT_EQ(a.digest, b.digest) << n;
    EXPECT_EQ(a.digest, XXH3_64bits(x.data_ptr(), x.nbytes())) << n;  // the library's SSE2 build
    const auto sa = a.stats.as_array(), sb = b.stats.as_array();
    for (size_t k = 0; k < sa.size(); ++k) {
      EXPECT_EQ(std::bit_cast<uint64_t>(sa[k]), std::bit_cast<uint64_t>(sb[k])) << n << " " << k;
    }
  }
}

// The block-parallel digest (what runs on a CUDA tensor's device) is XXH3_64bits for every
// length: around the short/long switch at 240 bytes, around the 1 KiB block and 64-byte stripe
// boundaries (the last stripe overlapping the last block or not), and over several 8 MiB
// chunks of blocks.
TEST(DigestStats, DeviceDigestIsXxh3) {
  auto gen = at::make_generator<at::CPUGeneratorImpl>(21);
  std::vector<int64_t> lengths{0,    1,    16,   17,   129,  240,  241,  255,  256,  1023, 1024,
                               1025, 1087, 1088, 1089, 1984, 2047, 2048, 2049, 3000, 65536};
  lengths.push_back((int64_t(8192) * 1024) * 2 + 777);  // three chunks, a partial tail block
  for (int64_t n : lengths) {
    auto bytes = torch::randint(0, 256, {n}, gen, torch::kUInt8);
    EXPECT_EQ(xxh3_by_blocks(bytes), XXH3_64bits(bytes.data_ptr(), size_t(n))) << n;
  }
  // Other dtypes and layouts digest their C-order bytes, as tensor_digest does.
  auto half = torch::randn({7, 81}, torch::kFloat16);  // 1134 bytes: not a multiple of 8
  EXPECT_EQ(xxh3_by_blocks(half), tensor_digest(half));
  auto wide = torch::randn({300, 40}, torch::kFloat64);
  EXPECT_EQ(xxh3_by_blocks(wide.t()), tensor_digest(wide.t()));  // non-contiguous
  // A one-bit change changes it.
  auto flipped = wide.clone();
  flipped.view(torch::kInt64)[123][7].bitwise_xor_(int64_t(1) << 40);
  EXPECT_NE(xxh3_by_blocks(flipped), xxh3_by_blocks(wide));
  // On a GPU the same route runs on the device (the log writer's path for CUDA tensors).
  if (torch::cuda::is_available()) {
    for (int64_t n : lengths) {
      auto bytes = torch::randint(0, 256, {n}, gen, torch::kUInt8);
      EXPECT_EQ(device_digest(bytes.cuda()), tensor_digest(bytes)) << n;
    }
  }
}

}  // namespace
}  // namespace cliprepro
