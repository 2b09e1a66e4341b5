// Real-data pipeline parity: JPEG/PNG decoding, PIL bicubic resize, RandomResizedCrop draws and
// OpenCLIP's train/eval transforms against PIL/torchvision/open_clip outputs computed at run
// time by scripts/data_reference.py; CSV lists, WebDataset shards, brace expansion, errors.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <ATen/CPUGeneratorImpl.h>
#include <nlohmann/json.hpp>

#include <fstream>
#include <sstream>

#include "harness/log/tensor_file.h"
#include "src/data/csv_dataset.h"
#include "src/data/image_decode.h"
#include "src/data/pil_resample.h"
#include "src/data/random_erasing.h"
#include "src/data/transforms.h"
#include "src/data/webdataset.h"
#include "test_paths.h"
#include "tests/test_util.h"

namespace cliprepro {
namespace {

struct Fixture {
  std::string dir;
  nlohmann::json manifest;
  TensorMap ref;
};

// Generated once per process (the Python side takes a few seconds).
const Fixture& fixture() {
  static const Fixture f = [] {
    Fixture fx;
    fx.dir = test::temp_dir("real-data").string();
    const auto r = test::run_python_script("data_reference.py", fx.dir);
    if (r.exit_code != 0) throw std::runtime_error("data_reference.py failed:\n" + r.output);
    std::ifstream in(fx.dir + "/manifest.json");
    fx.manifest = nlohmann::json::parse(in);
    fx.ref = read_tensor_file(fx.dir + "/reference.h5");
    return fx;
  }();
  return f;
}

const torch::Tensor& reference(const std::string& name) {
  const auto& m = fixture().ref;
  const auto it = m.find(name);
  if (it == m.end()) throw std::runtime_error("reference.h5 has no '" + name + "'");
  return it->second;
}

// "" when bitwise equal, else shapes or the first differing element.
std::string first_mismatch(const torch::Tensor& got_in, const torch::Tensor& want_in) {
  if (got_in.sizes() != want_in.sizes() || got_in.scalar_type() != want_in.scalar_type()) {
    std::ostringstream s;
    s << "shape/dtype " << got_in.sizes() << " " << got_in.scalar_type() << " vs "
      << want_in.sizes() << " " << want_in.scalar_type();
    return s.str();
  }
  if (torch::equal(got_in, want_in)) return "";
  const auto got = got_in.contiguous().view({-1}).to(torch::kDouble);
  const auto want = want_in.contiguous().view({-1}).to(torch::kDouble);
  const auto idx = (got != want).nonzero()[0][0].item<int64_t>();
  const auto n_diff = (got != want).sum().item<int64_t>();
  std::ostringstream s;
  s << n_diff << " of " << got.numel() << " elements differ; first at flat index " << idx
    << ": got " << got[idx].item<double>() << " want " << want[idx].item<double>()
    << " (max abs diff " << (got - want).abs().max().item<double>() << ")";
  return s.str();
}

at::Generator seeded(uint64_t seed) { return at::detail::createCPUGenerator(seed); }

TEST(RealData, DecodeMatchesPil) {
  const auto& images = fixture().manifest["images"];
  ASSERT_GE(images.size(), 20u);
  for (size_t i = 0; i < images.size(); ++i) {
    const auto& e = images[i];
    SCOPED_TRACE(e["name"].get<std::string>());
    const auto img = decode_image_file(e["path"]);
    EXPECT_EQ(pil_mode_name(img.mode), e["mode"].get<std::string>());
    EXPECT_EQ(img.width(), e["width"].get<int64_t>());
    EXPECT_EQ(img.height(), e["height"].get<int64_t>());
    EXPECT_EQ(first_mismatch(pil_to_rgb(img), reference("img" + std::to_string(i) + "/decoded")),
              "");
  }
}

TEST(RealData, ResizeMatchesPil) {
  const auto& cases = fixture().manifest["resize"];
  for (size_t j = 0; j < cases.size(); ++j) {
    const auto& c = cases[j];
    SCOPED_TRACE("resize" + std::to_string(j) + " " + c.dump());
    const std::string mode = c["mode"];
    PilImage img;
    img.mode = mode == "L"     ? PilMode::kL
               : mode == "LA"  ? PilMode::kLA
               : mode == "RGB" ? PilMode::kRGB
                               : PilMode::kRGBA;
    img.pixels = reference("resize" + std::to_string(j) + "/in");
    const auto& b = c["box"];
    const ResizeBox box{float(b[0].get<double>()), float(b[1].get<double>()),
                        float(b[2].get<double>()), float(b[3].get<double>())};
    const auto out = pil_resize_bicubic(img, c["width"], c["height"], box);
    EXPECT_EQ(first_mismatch(out.pixels, reference("resize" + std::to_string(j) + "/out")), "");
  }
}

TEST(RealData, RandomResizedCropParamsMatchTorchvision) {
  const auto& cases = fixture().manifest["rrc"];
  const auto& want = reference("rrc/params");
  ASSERT_EQ(want.size(0), int64_t(cases.size()));
  int fallbacks = 0;
  for (size_t n = 0; n < cases.size(); ++n) {
    const auto& c = cases[n];
    auto gen = seeded(c["seed"].get<uint64_t>());
    const std::array<double, 2> scale{c["scale"][0].get<double>(), c["scale"][1].get<double>()};
    const auto p = random_resized_crop_params(c["height"], c["width"], scale, kDefaultRatio, gen);
    const CropParams w{want[n][0].item<int64_t>(), want[n][1].item<int64_t>(),
                       want[n][2].item<int64_t>(), want[n][3].item<int64_t>()};
    EXPECT_EQ(p, w) << c.dump() << " got " << p.top << "," << p.left << "," << p.height << ","
                    << p.width << " want " << w.top << "," << w.left << "," << w.height << ","
                    << w.width;
    if (c["height"].get<int>() == 500 || c["width"].get<int>() == 500) ++fallbacks;
  }
  EXPECT_GT(fallbacks, 0);
}

TEST(RealData, TrainAndEvalTransformsMatchOpenClip) {
  const auto& images = fixture().manifest["images"];
  int compared = 0;
  for (size_t i = 0; i < images.size(); ++i) {
    const auto& e = images[i];
    SCOPED_TRACE(e["name"].get<std::string>());
    const auto img = decode_image_file(e["path"]);
    const auto& train = e["train"];
    for (size_t k = 0; k < train.size(); ++k) {
      auto gen = seeded(train[k]["seed"].get<uint64_t>());
      const auto got = train_transform(img, train[k]["size"].get<int64_t>(), gen);
      EXPECT_EQ(
          first_mismatch(got, reference("img" + std::to_string(i) + "/train" + std::to_string(k))),
          "")
          << "train call " << k;
      ++compared;
    }
    for (const auto& s : fixture().manifest["eval_sizes"]) {
      const auto got = eval_transform(img, s.get<int64_t>());
      EXPECT_EQ(first_mismatch(got, reference("img" + std::to_string(i) + "/eval" + s.dump())), "")
          << "eval " << s;
      ++compared;
    }
  }
  std::printf("[RealData] %d transform outputs compared bitwise\n", compared);
}

TEST(RealData, TrainTransformOnRgbTensorEqualsRgbImage) {
  const auto rgb = decode_rgb_file(fixture().manifest["images"][0]["path"]);
  auto g1 = seeded(5), g2 = seeded(5);
  EXPECT_TRUE(torch::equal(train_transform(rgb, 32, g1), train_transform(rgb_image(rgb), 32, g2)));
}

TEST(RealData, CorruptAndTruncatedFilesThrowNamingTheFile) {
  for (const auto& c : fixture().manifest["corrupt"]) {
    const std::string path = c["path"];
    SCOPED_TRACE(path);
    try {
      decode_image_file(path);
      ADD_FAILURE() << "no error for " << path;
    } catch (const std::runtime_error& e) {
      EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << e.what();
    }
  }
  EXPECT_THROW(decode_image_file(fixture().dir + "/images/does-not-exist.png"), std::runtime_error);
}

// Image bombs: a PNG or JPEG whose header declares 60000x60000 / 65500x65500 pixels is refused,
// naming the file, before any pixel buffer exists; so is a file that is not a regular file.
TEST(RealData, ImageBombsAndNonFilesAreRefusedNamingTheFile) {
  const auto dir = test::temp_dir("bombs");
  const auto png = dir / "bomb.png", jpg = dir / "bomb.jpg";
  // Small real images, their headers then patched to claim huge sizes (libpng checks the IHDR
  // CRC, so Python rewrites it).
  const auto r = test::run_command(
      std::string(kPython) +
      " -c \"import io,struct,sys,zlib\n"
      "from PIL import Image\n"
      "b=io.BytesIO(); Image.new('RGB',(8,8)).save(b,'PNG'); d=bytearray(b.getvalue())\n"
      "ihdr=struct.pack('>II',60000,60000)+bytes(d[24:29]); d[16:29]=ihdr\n"
      "d[29:33]=struct.pack('>I',zlib.crc32(b'IHDR'+bytes(ihdr)))\n"
      "open(sys.argv[1],'wb').write(d)\n"
      "b=io.BytesIO(); Image.new('RGB',(8,8)).save(b,'JPEG'); d=bytearray(b.getvalue())\n"
      "i=d.index(b'\\xff\\xc0'); d[i+5:i+9]=struct.pack('>HH',65500,65500)\n"
      "open(sys.argv[2],'wb').write(d)\" " +
      png.string() + " " + jpg.string());
  ASSERT_EQ(r.exit_code, 0) << r.output;
  for (const auto& [file, size] : {std::pair{png, "60000x60000"}, std::pair{jpg, "65500x65500"}}) {
    try {
      decode_rgb_file(file.string());
      ADD_FAILURE() << file << " was decoded";
    } catch (const std::runtime_error& e) {
      const std::string msg = e.what();
      EXPECT_NE(msg.find(file.string()), std::string::npos) << msg;
      EXPECT_NE(msg.find(std::string("image of ") + size), std::string::npos) << msg;
      EXPECT_NE(msg.find("exceeds max-image-pixels 25000000"), std::string::npos) << msg;
    }
  }
  for (const std::string& path : std::vector<std::string>{"/dev/zero", dir.string()}) {
    try {
      decode_rgb_file(path);
      ADD_FAILURE() << path << " was read";
    } catch (const std::runtime_error& e) {
      EXPECT_NE(std::string(e.what()).find(path + ": not a regular file"), std::string::npos)
          << e.what();
    }
  }
}

TEST(RealData, CsvDatasetReadsOpenClipLists) {
  const auto& m = fixture().manifest["csv"];
  CsvOptions opt;
  opt.base_dir = fixture().dir;
  CsvDataset ds(m["path"], opt);
  const auto& rows = m["rows"];
  ASSERT_EQ(ds.size(), rows.size());
  for (size_t i = 0; i < rows.size(); ++i) {
    EXPECT_EQ(ds.image_path(i), rows[i]["filepath"].get<std::string>());
    EXPECT_EQ(ds.caption(i), rows[i]["title"].get<std::string>());
  }
  const auto s = ds.get(0);
  const auto want = read_binary_file(fixture().dir + "/" + rows[0]["filepath"].get<std::string>());
  EXPECT_EQ(s.image_bytes, want);
  EXPECT_EQ(s.caption, rows[0]["title"].get<std::string>());

  try {
    CsvDataset bad(fixture().dir + "/missing_column.csv", opt);
    ADD_FAILURE() << "missing column accepted";
  } catch (const std::runtime_error& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("missing_column.csv"), std::string::npos) << msg;
    EXPECT_NE(msg.find("'title'"), std::string::npos) << msg;
  }
  // Without base_dir, relative paths are used as written (OpenCLIP opens them from the CWD).
  CsvDataset as_written(m["path"]);
  EXPECT_EQ(as_written.resolved_path(0), rows[0]["filepath"].get<std::string>());
}

TEST(RealData, CsvParserQuotingAndErrors) {
  const auto rows = parse_csv("a\tb\r\n\"x\"\"y\"\t\"multi\nline\"\n\nlast\t\n", '\t', "t.csv");
  ASSERT_EQ(rows.size(), 3u);
  EXPECT_EQ(rows[1][0], "x\"y");
  EXPECT_EQ(rows[1][1], "multi\nline");
  EXPECT_EQ(rows[2][0], "last");
  EXPECT_EQ(rows[2][1], "");
  EXPECT_THROW(parse_csv("a\n\"open", '\t', "t.csv"), std::runtime_error);
}

TEST(RealData, WebDatasetShardsGroupAndSkip) {
  const auto& m = fixture().manifest["wds"];
  WebDataset ds(m["spec"].get<std::string>());
  EXPECT_EQ(ds.shards().size(), 3u);
  const auto& want = m["samples"];
  ASSERT_EQ(ds.size(), want.size());
  for (size_t i = 0; i < want.size(); ++i) {
    const auto s = ds.get(i);
    EXPECT_EQ(s.key, want[i]["key"].get<std::string>());
    EXPECT_EQ(s.caption, want[i]["caption"].get<std::string>());
    EXPECT_EQ(s.image_bytes, read_binary_file(want[i]["image"]));
  }
  ASSERT_EQ(ds.skipped().size(), m["skipped"].size());
  EXPECT_NE(ds.skipped()[0].source.find(m["skipped"][0].get<std::string>()), std::string::npos);
  EXPECT_EQ(ds.skipped()[0].reason, "no txt caption member");
  // A decoded sample goes through the same transform as a file.
  const auto s = ds.get(0);
  auto gen = seeded(0);
  EXPECT_EQ(
      train_transform(decode_image(s.image_bytes.data(), s.image_bytes.size(), s.source), 32, gen)
          .sizes(),
      (std::vector<int64_t>{3, 32, 32}));
}

TEST(RealData, TruncatedTarNamesTheShard) {
  const auto& m = fixture().manifest["wds"];
  const std::string src = expand_shard_list(m["spec"])[0];
  const auto bytes = read_binary_file(src);
  const std::string cut = fixture().dir + "/cut.tar";
  {
    std::ofstream out(cut, std::ios::binary);
    out.write(reinterpret_cast<const char*>(bytes.data()), std::streamsize(bytes.size() / 2 + 100));
  }
  try {
    WebDataset ds(cut);
    ADD_FAILURE() << "truncated tar accepted";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("cut.tar"), std::string::npos) << e.what();
  }
}

// Found by fuzz_tar: a pax record whose length is not a number threw std::invalid_argument
// ("stoul") out of the reader; a base-256 size could wrap the bounds check.
TEST(RealData, MalformedPaxRecordsAndHugeSizesNameTheShard) {
  const std::string dir = test::temp_dir("pax").string();
  const auto r = test::run_command(
      std::string(kPython) +
      " -c \"import io,sys,tarfile\n"
      "def shard(path, pax):\n"
      "  with tarfile.open(path, 'w', format=tarfile.USTAR_FORMAT) as t:\n"
      "    i=tarfile.TarInfo('././@PaxHeader'); i.type=tarfile.XHDTYPE; i.size=len(pax)\n"
      "    t.addfile(i, io.BytesIO(pax))\n"
      "    i=tarfile.TarInfo('0.txt'); i.size=1; t.addfile(i, io.BytesIO(b'a'))\n"
      "shard(sys.argv[1], b'xx path=a\\n')\n"
      "shard(sys.argv[2], b'99 path=a\\n')\n"
      "b=bytearray(open(sys.argv[1],'rb').read()); b[1024+124:1024+136]=b'\\x80'+b'\\xff'*11\n"
      "s=sum(b[1024:1024+148])+sum(b[1024+156:1024+512])+8*32; b[1024+148:1024+156]=b'%06o\\x00 ' "
      "% s\n"
      "open(sys.argv[3],'wb').write(b)\" " +
      dir + "/pax_nan.tar " + dir + "/pax_long.tar " + dir + "/huge.tar");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  for (const std::string name : {"pax_nan.tar", "pax_long.tar", "huge.tar"}) {
    try {
      WebDataset ds(dir + "/" + name);
      ADD_FAILURE() << name << " accepted";
    } catch (const std::runtime_error& e) {
      EXPECT_NE(std::string(e.what()).find(name), std::string::npos) << e.what();
    }
  }
}

TEST(RealData, BraceExpansion) {
  using V = std::vector<std::string>;
  EXPECT_EQ(expand_braces("shard-{000..003}.tar"),
            (V{"shard-000.tar", "shard-001.tar", "shard-002.tar", "shard-003.tar"}));
  EXPECT_EQ(expand_braces("s{8..11}"), (V{"s8", "s9", "s10", "s11"}));
  EXPECT_EQ(expand_braces("s{08..10}"), (V{"s08", "s09", "s10"}));
  EXPECT_EQ(expand_braces("{a,b}{1..2}"), (V{"a1", "a2", "b1", "b2"}));
  EXPECT_EQ(expand_braces("x{a,{b,c}d}y"), (V{"xay", "xbdy", "xcdy"}));
  EXPECT_EQ(expand_braces("{0..6..3}"), (V{"0", "3", "6"}));
  EXPECT_EQ(expand_braces("{3..1}"), (V{"3", "2", "1"}));
  EXPECT_EQ(expand_braces("lit{a}"), (V{"lit{a}"}));
  EXPECT_EQ(expand_braces("no-braces.tar"), (V{"no-braces.tar"}));
  EXPECT_EQ(expand_braces("esc\\{a,b\\}"), (V{"esc{a,b}"}));
  EXPECT_EQ(expand_shard_list("a-{0..1}.tar::b.tar"), (V{"a-0.tar", "a-1.tar", "b.tar"}));
  EXPECT_EQ(expand_braces("{00000..00331}.tar").size(), 332u);
  EXPECT_EQ(expand_braces("{00000..00331}.tar").back(), "00331.tar");
}

TEST(RealData, FormatDetection) {
  const uint8_t jpg[] = {0xFF, 0xD8, 0xFF, 0xE0};
  const uint8_t png[] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n'};
  const uint8_t gif[] = {'G', 'I', 'F', '8', '9', 'a'};
  EXPECT_EQ(detect_image_format(jpg, sizeof(jpg)), ImageFormat::kJpeg);
  EXPECT_EQ(detect_image_format(png, sizeof(png)), ImageFormat::kPng);
  EXPECT_EQ(detect_image_format(gif, sizeof(gif)), ImageFormat::kUnknown);
  try {
    decode_image(gif, sizeof(gif), "anim.gif");
    ADD_FAILURE();
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("anim.gif"), std::string::npos);
  }
}

}  // namespace
}  // namespace cliprepro

namespace cliprepro {
namespace {

// timm's RandomErasing(mode='pixel'): one region of 2%..1/3 of the image, aspect 0.3..3.33,
// N(0, 1) noise, with the given probability; a function of the generator's seed.
TEST(RandomErasing, ErasesOneRegionWithinTimmsBoundsAtTheGivenRate) {
  constexpr int kTrials = 2000;
  int erased = 0;
  double sum = 0, sum_sq = 0, n = 0;
  for (int t = 0; t < kTrials; ++t) {
    auto gen = at::make_generator<at::CPUGeneratorImpl>(uint64_t(t));
    auto img = torch::zeros({3, 64, 48});
    const bool did = random_erasing_(img, 0.3, gen);
    const auto mask = img.ne(0).any(0);  // (H, W)
    ASSERT_EQ(did, mask.any().item<bool>()) << t;
    if (!did) continue;
    ++erased;
    const auto rows = mask.any(1).nonzero(), cols = mask.any(0).nonzero();
    const int64_t h = rows.size(0), w = cols.size(0);
    // One solid rectangle: every pixel inside the bounding box erased.
    EXPECT_EQ(mask.sum().item<int64_t>(), h * w) << t;
    EXPECT_EQ(rows[-1].item<int64_t>() - rows[0].item<int64_t>() + 1, h) << t;
    const double area = 64.0 * 48.0;
    EXPECT_GE(double(h * w), 0.02 * area * 0.8) << t;  // rounding of h and w
    EXPECT_LE(double(h * w), area / 3.0 * 1.2) << t;
    EXPECT_LT(h, 64);
    EXPECT_LT(w, 48);
    const auto v = img.masked_select(mask.unsqueeze(0).expand_as(img)).to(torch::kFloat64);
    sum += v.sum().item<double>();
    sum_sq += v.square().sum().item<double>();
    n += double(v.numel());
  }
  // Binomial(2000, 0.3): sd 0.010; 5 sd.
  EXPECT_NEAR(double(erased) / kTrials, 0.3, 0.05);
  EXPECT_NEAR(sum / n, 0.0, 0.01);
  EXPECT_NEAR(std::sqrt(sum_sq / n), 1.0, 0.01);
  // Probability 0 never draws; the same seed erases the same region with the same noise.
  auto g0 = at::make_generator<at::CPUGeneratorImpl>(7);
  auto img0 = torch::zeros({3, 8, 8});
  EXPECT_FALSE(random_erasing_(img0, 0.0, g0));
  auto ga = at::make_generator<at::CPUGeneratorImpl>(9),
       gb = at::make_generator<at::CPUGeneratorImpl>(9);
  auto a = torch::zeros({3, 32, 32}), b = torch::zeros({3, 32, 32});
  random_erasing_(a, 1.0, ga);
  random_erasing_(b, 1.0, gb);
  EXPECT_TRUE(torch::equal(a, b));
  EXPECT_TRUE(a.ne(0).any().item<bool>());
}

}  // namespace
}  // namespace cliprepro
