// [determinism] portable: cliprepro's CPU kernels compute what they promise (correctly rounded
// sqrt, glibc's libm, one FMA chain per product element), are restored when switched off, and
// the scenario and the golden key say what portable means. The cross-CPU proof itself is the
// portable_* CTest cases (tests/portable_check.sh under qemu-x86_64).
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>

#include "harness/log/env_fingerprint.h"
#include "harness/scenario/scenario.h"
#include "src/model/portable_kernels.h"

namespace cliprepro {
namespace {

// Turns the portable kernels on for one test and off again (LibTorch's, as other tests expect).
struct PortableKernels {
  PortableKernels() { set_portable_kernels(true); }
  ~PortableKernels() { set_portable_kernels(false); }
};

bool bitwise_equal(const torch::Tensor& a, const torch::Tensor& b) {
  return a.sizes() == b.sizes() && a.scalar_type() == b.scalar_type() &&
         std::memcmp(a.contiguous().data_ptr(), b.contiguous().data_ptr(), a.nbytes()) == 0;
}

torch::Tensor elementwise(const torch::Tensor& x, float (*f)(float)) {
  auto c = x.contiguous();
  auto out = torch::empty_like(c);
  for (int64_t i = 0; i < c.numel(); ++i) out.data_ptr<float>()[i] = f(c.data_ptr<float>()[i]);
  return out;
}

TEST(CpuPortable, UnaryKernelsAreCorrectlyRoundedSqrtAndGlibcLibm) {
  torch::manual_seed(1);
  const auto x = torch::rand({37, 129}) * 50 + 1e-3f;  // odd sizes: no vector-width luck
  set_portable_kernels(false);  // an earlier training in this process may have left them on
  torch::Tensor native_sqrt = x.sqrt();
  {
    PortableKernels on;
    EXPECT_TRUE(portable_kernels_enabled());
    // sqrt through double is exact for float (double rounding is innocuous for sqrt).
    EXPECT_TRUE(bitwise_equal(x.sqrt(), x.to(torch::kDouble).sqrt().to(torch::kFloat)));
    EXPECT_TRUE(bitwise_equal(x.exp(), elementwise(x, [](float v) { return std::exp(v); })));
    EXPECT_TRUE(bitwise_equal(x.log(), elementwise(x, [](float v) { return std::log(v); })));
    EXPECT_TRUE(bitwise_equal(x.erf(), elementwise(x, [](float v) { return std::erf(v); })));
    // Strided, in-place and out= take the same kernel.
    const auto xt = x.t();
    EXPECT_TRUE(bitwise_equal(xt.sqrt(), x.sqrt().t()));
    auto y = x.clone();
    y.sqrt_();
    EXPECT_TRUE(bitwise_equal(y, x.sqrt()));
    auto out = torch::empty({0});
    at::exp_out(out, x);
    EXPECT_TRUE(bitwise_equal(out, x.exp()));
    // Other dtypes keep LibTorch's kernels, and integers still promote.
    EXPECT_EQ(torch::arange(4).sqrt().scalar_type(), torch::kFloat);
  }
  EXPECT_FALSE(portable_kernels_enabled());
  EXPECT_TRUE(bitwise_equal(x.sqrt(), native_sqrt)) << "LibTorch's kernel is not back";
}

// Reference: element (i, j) as one std::fma chain over k in order.
torch::Tensor fma_chain_product(const torch::Tensor& a, const torch::Tensor& b) {
  auto out = torch::empty({a.size(0), b.size(1)});
  auto A = a.accessor<float, 2>(), B = b.accessor<float, 2>();
  auto C = out.accessor<float, 2>();
  for (int64_t i = 0; i < a.size(0); ++i) {
    for (int64_t j = 0; j < b.size(1); ++j) {
      float acc = 0;
      for (int64_t p = 0; p < a.size(1); ++p) acc = std::fma(A[i][p], B[p][j], acc);
      C[i][j] = acc;
    }
  }
  return out;
}

TEST(CpuPortable, MatrixProductsAreOneFmaChainPerElementOnAnyThreadCount) {
  torch::manual_seed(2);
  const auto a = torch::randn({9, 70}), w = torch::randn({67, 70}), bias = torch::randn({67});
  const auto b = w.t();  // strided, as linear's weight.t()
  const auto want = fma_chain_product(a, b.contiguous());
  PortableKernels on;
  EXPECT_TRUE(bitwise_equal(torch::mm(a, b), want));
  EXPECT_TRUE(bitwise_equal(torch::mm(a.t().contiguous().t(), b), want));  // strided A
  // addmm: bias + product, two roundings in that order.
  EXPECT_TRUE(bitwise_equal(torch::addmm(bias, a, b), bias.expand({9, 67}) + want));
  EXPECT_TRUE(bitwise_equal(torch::nn::functional::linear(a, w, bias), bias + want));
  // bmm / baddbmm: each batch as its own product.
  const auto a3 = torch::randn({5, 4, 70}), b3 = torch::randn({5, 70, 3});
  const auto p3 = torch::bmm(a3, b3);
  for (int64_t i = 0; i < 5; ++i)
    EXPECT_TRUE(bitwise_equal(p3[i], fma_chain_product(a3[i], b3[i]))) << "batch " << i;
  EXPECT_TRUE(bitwise_equal(torch::baddbmm(p3, a3, b3, 0.0, 1.0), p3));
  // The thread count changes no bit.
  const int threads = at::get_num_threads();
  at::set_num_threads(1);
  const auto one = torch::mm(a, b);
  at::set_num_threads(2);
  const auto two = torch::mm(a, b);
  at::set_num_threads(threads);
  EXPECT_TRUE(bitwise_equal(one, two));
  // Gradients go through the same kernels (mm's backward is mm).
  auto wa = w.clone().requires_grad_(true);
  torch::nn::functional::linear(a, wa).sum().backward();
  EXPECT_TRUE(bitwise_equal(wa.grad(), fma_chain_product(torch::ones({67, 9}), a)));
}

TEST(CpuPortable, ScenarioPinsItsIsaAndRefusesOthersAtTheLine) {
  const std::string base = "name = \"p\"\nmodel = \"tiny\"\n[determinism]\n";
  const Scenario s = parse_scenario(base + "threads = 1\n", "/x/p.toml", "");
  EXPECT_TRUE(s.train.determinism.portable);  // the default
  EXPECT_EQ(s.train.determinism.cpu_isa, "AVX2");
  EXPECT_EQ(s.train.determinism.mkl_cbwr, "AVX2,STRICT");
  try {
    parse_scenario(base + "mkl-cbwr = \"AVX2\"\n", "/x/p.toml", "");
    FAIL() << "portable accepted MKL_CBWR=AVX2";
  } catch (const ScenarioError& e) {
    EXPECT_NE(std::string(e.what()).find("/x/p.toml:4:"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("portable = false"), std::string::npos) << e.what();
  }
  const Scenario own =
      parse_scenario(base + "portable = false\nmkl-cbwr = \"AVX2\"\n", "/x/p.toml", "");
  EXPECT_EQ(own.train.determinism.mkl_cbwr, "AVX2");
  EXPECT_TRUE(own.train.determinism.cpu_isa.empty());
}

TEST(CpuPortable, GoldenKeyOfAPortableRunNamesNoCpu) {
  nlohmann::json fp = {
      {"torch_version", "2.11.0"},
      {"device", "cpu"},
      {"cpu", {{"vendor", "AuthenticAMD"}, {"model", "AMD EPYC"}, {"arch", "x86_64"}}},
      {"determinism",
       {{"intra_op_threads", 2},
        {"aten_cpu_capability", "AVX2"},
        {"env", {{"ONEDNN_MAX_CPU_ISA", "AVX2"}, {"MKL_CBWR", "AVX2,STRICT"}}},
        {"portable_kernels", {{"ops", {"aten::sqrt"}}, {"libm", "glibc 2.36"}}}}}};
  auto intel = fp;
  intel["cpu"] = {{"vendor", "GenuineIntel"},
                  {"model", "Intel Xeon"},
                  {"arch", "x86_64"},
                  {"isa_flags", {"avx2", "amx_tile"}}};
  EXPECT_TRUE(fingerprint_differences(fp, intel).empty());
  EXPECT_FALSE(fingerprint_key(fp).contains("cpu_vendor"));
  auto threads = fp;
  threads["determinism"]["intra_op_threads"] = 1;
  EXPECT_FALSE(fingerprint_differences(fp, threads).empty());
  // Without the portable kernels the vendor is part of the key (MKL dispatches on it).
  fp["determinism"].erase("portable_kernels");
  intel["determinism"].erase("portable_kernels");
  const auto d = fingerprint_differences(fp, intel);
  ASSERT_EQ(d.size(), 1u);
  EXPECT_EQ(d[0].rfind("cpu_vendor:", 0), 0u) << d[0];
}

}  // namespace
}  // namespace cliprepro
