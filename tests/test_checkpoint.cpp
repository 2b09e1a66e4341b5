// Checkpoint I/O: safetensors round trips, torch.save zip files written by PyTorch itself in
// OpenCLIP's layouts, strict-load reports, and clear errors for bad files.
#include <gtest/gtest.h>

#include <torch/torch.h>
#include <tuple>

#include "src/model/checkpoint.h"
#include "src/model/clip.h"
#include "test_paths.h"
#include "tests/test_util.h"

namespace cliprepro {
namespace {

void expect_same(const StateDict& a, const StateDict& b) {
  std::map<std::string, torch::Tensor> mb(b.begin(), b.end());
  ASSERT_EQ(a.size(), b.size());
  for (const auto& [k, t] : a) {
    ASSERT_TRUE(mb.count(k)) << k;
    EXPECT_EQ(t.scalar_type(), mb[k].scalar_type()) << k;
    EXPECT_TRUE(torch::equal(t, mb[k])) << k;
  }
}

TEST(Checkpoint, SafetensorsRoundTripKeepsDtypesBitsAndMetadata) {
  const auto dir = test::temp_dir("ckpt_roundtrip");
  StateDict sd = {{"a.f32", torch::randn({3, 4})},
                  {"b.f16", torch::randn({5}).to(torch::kFloat16)},
                  {"c.bf16", torch::randn({2, 2}).to(torch::kBFloat16)},
                  {"d.i64", torch::tensor(std::vector<int64_t>{-1, 0, 7})},
                  {"e.scalar", torch::tensor(2.5f)},
                  {"f.empty", torch::empty({0, 3})},
                  {"g.noncontig", torch::randn({4, 3}).t()}};
  const auto path = (dir / "x.safetensors").string();
  write_safetensors(path, sd, {{"producer", "test"}});
  std::map<std::string, std::string> meta;
  expect_same(sd, read_safetensors(path, &meta));
  EXPECT_EQ(meta.at("producer"), "test");
}

TEST(Checkpoint, ModelStateDictLoadsBackStrictly) {
  torch::manual_seed(1);
  Clip a(load_model_config("tiny"));
  torch::manual_seed(2);
  Clip b(load_model_config("tiny"));
  const auto path = (test::temp_dir("ckpt_model") / "tiny.safetensors").string();
  write_safetensors(path, model_state_dict(*a));
  auto report = load_state_dict(*b, read_checkpoint(path), /*strict=*/true);
  EXPECT_TRUE(report.clean());
  expect_same(model_state_dict(*a), model_state_dict(*b));
}

// PyTorch writes the zip files: bare state dicts and OpenCLIP training checkpoints
// ({"epoch", "name", "state_dict", "optimizer"}), with and without DDP's "module." prefix.
TEST(Checkpoint, ReadsTorchZipFilesInOpenClipLayouts) {
  const auto dir = test::temp_dir("ckpt_torch");
  torch::manual_seed(4);
  Clip clip(load_model_config("tiny"));
  const auto st = (dir / "w.safetensors").string();
  write_safetensors(st, model_state_dict(*clip));
  for (const std::string flags : {"", "--wrap", "--module-prefix", "--wrap --module-prefix"}) {
    const auto pt = (dir / ("w" + std::to_string(flags.size()) + ".pt")).string();
    auto r = test::run_python_script(
        "openclip_reference.py", "save-torch --checkpoint " + st + " --out " + pt + " " + flags);
    ASSERT_EQ(r.exit_code, 0) << r.output;
    SCOPED_TRACE("save-torch " + flags);
    expect_same(model_state_dict(*clip), read_checkpoint(pt));
    torch::manual_seed(9);
    Clip other(load_model_config("tiny"));
    EXPECT_TRUE(load_state_dict(*other, read_checkpoint(pt), true).clean());
  }
}

TEST(Checkpoint, StrictLoadListsMissingUnexpectedAndMismatchedKeys) {
  Clip clip(load_model_config("tiny"));
  auto sd = model_state_dict(*clip);
  StateDict edited;
  for (auto& [k, t] : sd) {
    if (k == "text_projection") continue;                              // missing
    if (k == "logit_scale") t = torch::zeros({2});                     // shape mismatch
    if (k.find("num_batches_tracked") != std::string::npos) continue;  // tolerated, as PyTorch
    edited.emplace_back(k, t);
  }
  edited.emplace_back("visual.extra.weight", torch::zeros({1}));  // unexpected
  try {
    load_state_dict(*clip, edited, /*strict=*/true);
    FAIL() << "strict load accepted a bad checkpoint";
  } catch (const std::runtime_error& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("1 missing keys"), std::string::npos) << msg;
    EXPECT_NE(msg.find("text_projection"), std::string::npos) << msg;
    EXPECT_NE(msg.find("visual.extra.weight"), std::string::npos) << msg;
    EXPECT_NE(msg.find("logit_scale: checkpoint [2] vs model []"), std::string::npos) << msg;
    EXPECT_EQ(msg.find("num_batches_tracked"), std::string::npos) << msg;
  }
  // Non-strict: missing/unexpected are reported, shape mismatches still fail (as PyTorch).
  edited.erase(std::find_if(edited.begin(), edited.end(),
                            [](const auto& p) { return p.first == "logit_scale"; }));
  auto report = load_state_dict(*clip, edited, /*strict=*/false);
  EXPECT_EQ(report.missing, (std::vector<std::string>{"text_projection", "logit_scale"}));
  EXPECT_EQ(report.unexpected, std::vector<std::string>{"visual.extra.weight"});
}

TEST(Checkpoint, BadFilesGiveClearErrors) {
  const auto dir = test::temp_dir("ckpt_bad");
  test::write_file(dir / "trunc.safetensors", std::string("\xff\xff\x00\x00\x00\x00\x00\x00{", 9));
  test::write_file(dir / "legacy.pt", std::string("\x80\x02\x8a\x0a", 4));
  test::write_file(dir / "json.safetensors", std::string("\x02\x00\x00\x00\x00\x00\x00\x00{x", 10));
  for (const auto& [file, needle] : std::vector<std::pair<std::string, std::string>>{
           {"trunc.safetensors", "header length"},
           {"legacy.pt", "legacy (non-zip)"},
           {"json.safetensors", "bad safetensors header"},
           {"absent.pt", "cannot open checkpoint"}}) {
    try {
      read_checkpoint((dir / file).string());
      ADD_FAILURE() << file << " was accepted";
    } catch (const std::runtime_error& e) {
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find(file), std::string::npos) << e.what();
    }
  }
}

// A safetensors file with a hand-written header over `data` (the bytes after the header).
std::string safetensors_bytes(const std::string& header, const std::string& data) {
  std::string h = header;
  std::string out(8, '\0');
  for (int i = 0; i < 8; ++i) out[size_t(i)] = char((uint64_t(h.size()) >> (8 * i)) & 0xff);
  return out + h + data;
}

// Hostile offsets never read outside the data section: each is refused, naming the file.
TEST(Checkpoint, SafetensorsOffsetsOutsideOrOverlappingAreRefused) {
  const auto dir = test::temp_dir("ckpt_offsets");
  const std::string data(32, '\x11');
  const std::string w = R"("w":{"dtype":"F32","shape":[4],"data_offsets":)";
  const std::string v = R"("v":{"dtype":"F32","shape":[4],"data_offsets":)";
  for (const auto& [name, header, needle] :
       std::vector<std::tuple<std::string, std::string, std::string>>{
           {"negative", "{" + w + "[-16,0]}}", "two integers >= 0"},
           {"wrapping", "{" + w + "[18446744073709551600,0]}}", "do not hold its 16 bytes"},
           {"wrap_end", "{" + w + "[18446744073709551600,18446744073709551616]}}", "two integers"},
           {"past_end", "{" + w + "[24,40]}}", "do not hold its 16 bytes"},
           {"overlap", "{" + w + "[0,16]}," + v + "[8,24]}}", "overlaps"},
           {"duplicate", "{" + w + "[0,16]}," + v + "[0,16]}}", "overlaps"},
           {"gap", "{" + w + "[16,32]}}", "leaves a gap"},
           {"short", "{" + w + "[0,16]}}", "bytes after the last tensor"},
           {"huge_shape",
            R"({"w":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,16]}})",
            "overflows"},
           {"neg_shape", R"({"w":{"dtype":"F32","shape":[-4],"data_offsets":[0,16]}})",
            "shape entries"},
           {"no_dtype", R"({"w":{"shape":[4],"data_offsets":[0,16]}})", "needs string 'dtype'"},
           {"meta_number", R"({"__metadata__":{"step":4}})", "is not a string"}}) {
    const auto path = dir / (name + ".safetensors");
    test::write_file(path, safetensors_bytes(header, data));
    try {
      read_checkpoint(path.string());
      ADD_FAILURE() << name << " was accepted";
    } catch (const std::runtime_error& e) {
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << name << ": " << e.what();
      EXPECT_NE(std::string(e.what()).find(path.string()), std::string::npos) << e.what();
    }
  }
  // The well-formed neighbour of these cases still loads.
  test::write_file(dir / "ok.safetensors",
                   safetensors_bytes("{" + w + "[0,16]}," + v + "[16,32]}}", data));
  EXPECT_EQ(read_checkpoint((dir / "ok.safetensors").string()).size(), 2u);
}

// A torch zip whose storage record is shorter than its tensor is refused, as PyTorch's loader
// refuses it; dtypes other than the model's are refused, never converted.
TEST(Checkpoint, ShortStorageAndForeignDtypesAreRefused) {
  const auto dir = test::temp_dir("ckpt_short");
  const auto pt = (dir / "short.pt").string();
  const auto r =
      test::run_command(std::string(kPython) +
                        " -c \"import io,sys,torch,zipfile\n"
                        "buf=io.BytesIO(); torch.save({'w': torch.ones(64, 64)}, buf)\n"
                        "src=zipfile.ZipFile(io.BytesIO(buf.getvalue()))\n"
                        "out=zipfile.ZipFile(sys.argv[1], 'w', zipfile.ZIP_STORED)\n"
                        "[out.writestr(i, src.read(i)[:16] if i.filename.endswith('/data/0') else "
                        "src.read(i)) for i in src.infolist()]\n"
                        "out.close()\" " +
                        pt);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  try {
    read_checkpoint(pt);
    ADD_FAILURE() << "a 16-byte storage record for a 64x64 float tensor was accepted";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("holds 16 bytes"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("'w'"), std::string::npos) << e.what();
  }

  Clip clip(load_model_config("tiny"));
  for (const auto dtype : {torch::kFloat64, torch::kFloat16, torch::kInt64, torch::kBool}) {
    StateDict sd = model_state_dict(*clip);
    for (auto& [k, t] : sd)
      if (k == "text_projection") t = t.to(dtype);
    try {
      load_state_dict(*clip, sd, /*strict=*/true);
      ADD_FAILURE() << c10::toString(dtype) << " loaded into float32";
    } catch (const std::runtime_error& e) {
      const std::string want = std::string("text_projection: checkpoint dtype ") +
                               c10::toString(dtype) + " vs model Float";
      EXPECT_NE(std::string(e.what()).find(want), std::string::npos) << e.what();
    }
  }
}

// Found by fuzz_torch_zip: LibTorch's unpickler allocates the length a string opcode declares
// before reading it, so a 4 GiB BINUNICODE in a tiny file allocated 4 GiB.
TEST(Checkpoint, PickleLengthsBeyondTheRecordAreRefusedBeforeAllocating) {
  const auto dir = test::temp_dir("ckpt_pickle_len");
  const auto pt = (dir / "huge_string.pt").string();
  const auto r =
      test::run_command(std::string(kPython) +
                        " -c \"import sys,zipfile\n"
                        "out=zipfile.ZipFile(sys.argv[1], 'w', zipfile.ZIP_STORED)\n"
                        "out.writestr('archive/data.pkl', b'\\x80\\x02X\\xff\\xff\\xff\\xffabc')\n"
                        "out.writestr('archive/version', b'3\\n')\n"
                        "out.close()\" " +
                        pt);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  try {
    read_checkpoint(pt);
    ADD_FAILURE() << "a pickle declaring a 4 GiB string in 3 bytes was accepted";
  } catch (const std::runtime_error& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("declares 4294967295 bytes where 3 remain"), std::string::npos) << what;
    EXPECT_NE(what.find("huge_string.pt"), std::string::npos) << what;
  }
}

// Inputs fuzz_torch_zip found, kept in tests/fuzz/regressions/: a zip whose zip64 records made
// LibTorch's in-memory adapter read 65 kB past a 1.7 kB buffer (silent without ASan: the sanitize
// build, scripts/sanitize.sh, catches a regression), and a LONG_BINPUT memo index that made the
// unpickler allocate 30 GB. Each must be a clear error naming the file.
TEST(Checkpoint, FuzzFoundZipsAreClearErrors) {
  const auto dir = std::filesystem::path(kSourceDir) / "tests" / "fuzz" / "regressions";
  for (const std::string name :
       {"torch_zip-central-dir-past-the-end.pt", "torch_zip-memo-index-beyond-the-pickle.pt",
        "torch_zip-storage-larger-than-its-record.pt", "torch_zip-empty-pickle.pt",
        "torch_zip-zero-length-read.pt"}) {
    try {
      read_checkpoint((dir / name).string());
      ADD_FAILURE() << name << " was read";
    } catch (const std::runtime_error& e) {
      EXPECT_NE(std::string(e.what()).find(name), std::string::npos) << e.what();
    }
  }
}

}  // namespace
}  // namespace cliprepro
