// `cliprepro infer --inputs`: inputs the model cannot take are refused with the dataset's name
// and the shapes it expects (they reached LibTorch as raw traces; 65-px images were not checked).
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "harness/log/h5_types.h"
#include "harness/log/tensor_file.h"
#include "src/model/checkpoint.h"
#include "src/model/clip.h"
#include "tests/test_util.h"

namespace cliprepro {
namespace {

TEST(Infer, InputsTheModelCannotTakeNameTheDataset) {
  const auto dir = test::temp_dir("infer_inputs");
  const auto cfg = load_model_config("tiny");
  Clip clip(cfg);
  const auto weights = (dir / "w.safetensors").string();
  write_safetensors(weights, model_state_dict(*clip));
  const int64_t s = cfg.vision.image_size, ctx = cfg.text.context_length;
  auto tokens = [&](int64_t n, int64_t len, int64_t id) {
    return torch::full({n, len}, id, torch::kInt64);
  };
  auto images = [&](std::vector<int64_t> shape) { return torch::zeros(shape); };
  int n = 0;
  auto expect_refused = [&](const torch::Tensor& im, const torch::Tensor& tok,
                            const std::string& want) {
    const auto in = dir / ("in" + std::to_string(n++) + ".h5");
    TensorFileWriter w(in.string());
    w.write("images", im);
    w.write("tokens", tok);
    w.close();
    const auto r = test::run_cli("infer --model tiny --checkpoint " + weights + " --inputs " +
                                 in.string() + " --out " + (dir / "out.h5").string());
    EXPECT_EQ(r.exit_code, 2) << want << ": " << r.output;
    EXPECT_NE(r.output.find(want), std::string::npos) << r.output;
    EXPECT_NE(r.output.find("takes images [N, 3, " + std::to_string(s)), std::string::npos)
        << r.output;
  };
  expect_refused(images({2, 3, s + 1, s + 1}), tokens(2, ctx, 1), "/images has the wrong shape");
  expect_refused(images({2, 1, s, s}), tokens(2, ctx, 1), "/images has the wrong shape");
  expect_refused(images({3, s, s}), tokens(2, ctx, 1), "/images has the wrong shape");
  expect_refused(images({2, 3, s, s}), tokens(2, ctx + 1, 1), "/tokens has the wrong shape");
  expect_refused(images({2, 3, s, s}), tokens(3, ctx, 1), "the same number (>= 1) of samples");
  expect_refused(images({2, 3, s, s}), tokens(2, ctx, cfg.text.vocab_size),
                 "outside the vocabulary");
  expect_refused(images({2, 3, s, s}), tokens(2, ctx, -1), "outside the vocabulary");
}

// A dataset of strings where images belong: the type error used to be thrown through HDF5's
// iteration (C frames), and HDF5 then crashed in its shutdown (exit 139 after the message).
TEST(Infer, StringsWhereImagesBelongAreAnErrorNotACrash) {
  const auto dir = test::temp_dir("infer_strings");
  const auto cfg = load_model_config("tiny");
  Clip clip(cfg);
  const auto weights = (dir / "w.safetensors").string();
  write_safetensors(weights, model_state_dict(*clip));
  const auto in = dir / "in.h5";
  {
    TensorFileWriter w(in.string());
    w.write("tokens", torch::ones({2, cfg.text.context_length}, torch::kInt64));
    w.close();
  }
  h5_quiet();
  {
    H5Id f = h5_check(H5Fopen(in.c_str(), H5F_ACC_RDWR, H5P_DEFAULT), "open");
    H5Id type = h5_check(H5Tcopy(H5T_C_S1), "type");
    h5_check_status(H5Tset_size(type.get(), 8), "size");
    hsize_t n = 2;
    H5Id space = h5_check(H5Screate_simple(1, &n, nullptr), "space");
    H5Id d = h5_check(H5Dcreate2(f.get(), "images", type.get(), space.get(), H5P_DEFAULT,
                                 H5P_DEFAULT, H5P_DEFAULT),
                      "create");
    const char text[16] = "cat.jpg\0dog.jpg";
    h5_check_status(H5Dwrite(d.get(), type.get(), H5S_ALL, H5S_ALL, H5P_DEFAULT, text), "write");
  }
  const auto r = test::run_cli("infer --model tiny --checkpoint " + weights + " --inputs " +
                               in.string() + " --out " + (dir / "out.h5").string());
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find("/images"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("unsupported HDF5 type"), std::string::npos) << r.output;
}

}  // namespace
}  // namespace cliprepro
