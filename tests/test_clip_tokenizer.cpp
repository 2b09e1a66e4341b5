// CLIP BPE tokenizer: parity with open_clip.tokenize on generated captions (the reference runs
// at test time with the project Python and fails, never skips, when it cannot), plus unit tests
// with ids checked against open_clip 3.3.0 by hand.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "src/data/clip_tokenizer.h"
#include "test_paths.h"
#include "tests/test_util.h"

namespace cliprepro {
namespace {

struct Output {
  int exit_code = -1;
  std::string text;  // stdout and stderr together
};

Output run_command(const std::string& cmd) {
  Output out;
  FILE* p = popen((cmd + " 2>&1").c_str(), "r");
  if (p == nullptr) throw std::runtime_error("popen failed: " + cmd);
  std::array<char, 4096> buf{};
  while (fgets(buf.data(), static_cast<int>(buf.size()), p) != nullptr) out.text += buf.data();
  const int status = pclose(p);
  out.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return out;
}

// The vocabulary inside the installed open_clip_torch wheel, located with the project Python.
const std::string& vocab_path() {
  static const std::string path = [] {
    const Output out = run_command(
        std::string("\"") + kPython +
        "\" -c \"import open_clip,os;print(os.path.join(os.path.dirname(open_clip.__file__),"
        "'bpe_simple_vocab_16e6.txt.gz'))\"");
    std::string p = out.text;
    while (!p.empty() && (p.back() == '\n' || p.back() == '\r')) p.pop_back();
    if (out.exit_code != 0 || p.empty()) {
      throw std::runtime_error(std::string("cannot locate open_clip's vocabulary with ") + kPython +
                               ": " + out.text);
    }
    return p;
  }();
  return path;
}

const ClipTokenizer& tokenizer() {
  static const ClipTokenizer tok(vocab_path());
  return tok;
}

std::vector<int64_t> row(const torch::Tensor& t, int64_t r) {
  const torch::Tensor c = t[r].contiguous();
  return {c.data_ptr<int64_t>(), c.data_ptr<int64_t>() + c.numel()};
}

std::string ids_text(const std::vector<int64_t>& ids) {
  std::ostringstream s;
  for (size_t i = 0; i < ids.size(); ++i) s << (i ? " " : "") << ids[i];
  return s.str();
}

TEST(ClipTokenizer, MatchesOpenClipOnVariedCaptions) {
  const std::filesystem::path dir = test::temp_dir("clip-tokenizer");
  const std::string json_path = (dir / "reference.json").string();
  const Output ref = run_command(
      std::string("\"") + kPython + "\" \"" + kSourceDir +
      "/scripts/tokenizer_reference.py\" --count 1200 --seed 0 --out \"" + json_path + "\"");
  ASSERT_EQ(ref.exit_code, 0) << "scripts/tokenizer_reference.py failed (needs open_clip_torch in "
                              << kPython << "):\n"
                              << ref.text;
  std::ifstream in(json_path);
  ASSERT_TRUE(in) << json_path;
  const nlohmann::json j = nlohmann::json::parse(in);
  const auto captions = j.at("captions").get<std::vector<std::string>>();
  const auto expected = j.at("tokens").get<std::vector<std::vector<int64_t>>>();
  const int64_t context_length = j.at("context_length").get<int64_t>();
  ASSERT_EQ(context_length, 77);
  ASSERT_GE(captions.size(), 1000u);
  ASSERT_EQ(captions.size(), expected.size());

  const torch::Tensor got = tokenizer().tokenize(captions, context_length);
  ASSERT_EQ(got.sizes(), (std::vector<int64_t>{static_cast<int64_t>(captions.size()), 77}));
  size_t mismatches = 0;
  for (size_t i = 0; i < captions.size(); ++i) {
    const std::vector<int64_t> actual = row(got, static_cast<int64_t>(i));
    if (actual == expected[i]) continue;
    if (++mismatches <= 5) {
      ADD_FAILURE() << "caption " << i << ": " << nlohmann::json(captions[i]).dump()
                    << "\n  cleaned:  " << nlohmann::json(ClipTokenizer::clean(captions[i])).dump()
                    << "\n  expected: " << ids_text(expected[i])
                    << "\n  actual:   " << ids_text(actual);
    }
  }
  EXPECT_EQ(mismatches, 0u) << "of " << captions.size() << " captions";
  std::printf("[ parity   ] %zu captions, %zu mismatches\n", captions.size(), mismatches);
}

TEST(ClipTokenizer, KnownIds) {
  const ClipTokenizer& tok = tokenizer();
  EXPECT_EQ(tok.encode("a photo of a cat"), (std::vector<int64_t>{320, 1125, 539, 320, 2368}));
  EXPECT_EQ(tok.encode("Hello, World!"), (std::vector<int64_t>{3306, 267, 1002, 256}));
  EXPECT_EQ(tok.encode("it's CAF\u00c9 &amp; \ufb01sh"),
            (std::vector<int64_t>{585, 568, 15304, 261, 2759}));
  EXPECT_TRUE(tok.encode("").empty());
  EXPECT_TRUE(tok.encode(" \t\n\u00a0").empty());
}

TEST(ClipTokenizer, CleanFollowsFtfyHtmlAndLower) {
  EXPECT_EQ(ClipTokenizer::clean(
                "  Hello&nbsp;\u00a0WORLD \u039f\u0394\u03a5\u03a3\u03a3\u0395\u03a5\u03a3 \ufb01 "
                "\u201cx\u201d "),
            "hello world \u03bf\u03b4\u03c5\u03c3\u03c3\u03b5\u03c5\u03c2 fi \"x\"");
  EXPECT_EQ(ClipTokenizer::clean("&amp;amp;lt;"), "<");
}

TEST(ClipTokenizer, RowLayoutSpecialTokensAndZeroPadding) {
  const ClipTokenizer& tok = tokenizer();
  EXPECT_EQ(tok.vocab_size(), 49408);
  EXPECT_EQ(tok.sot(), 49406);
  EXPECT_EQ(tok.eot(), 49407);
  EXPECT_EQ(tok.encode("<start_of_text>"), (std::vector<int64_t>{49406}));
  EXPECT_EQ(tok.encode("<END_OF_TEXT>"), (std::vector<int64_t>{49407}));

  const torch::Tensor t = tok.tokenize({"a photo of a cat", ""}, 8);
  EXPECT_EQ(t.dtype(), torch::kLong);
  ASSERT_EQ(t.sizes(), (std::vector<int64_t>{2, 8}));
  EXPECT_EQ(row(t, 0), (std::vector<int64_t>{49406, 320, 1125, 539, 320, 2368, 49407, 0}));
  EXPECT_EQ(row(t, 1), (std::vector<int64_t>{49406, 49407, 0, 0, 0, 0, 0, 0}));
  EXPECT_EQ(tok.decode(tok.encode("a photo of a cat")), "a photo of a cat ");
}

TEST(ClipTokenizer, TruncationKeepsEotLast) {
  const ClipTokenizer& tok = tokenizer();
  std::string long_caption;
  for (int i = 0; i < 200; ++i) long_caption += "cat ";
  const std::vector<int64_t> full = row(tok.tokenize({long_caption}), 0);
  ASSERT_EQ(full.size(), 77u);
  EXPECT_EQ(full.front(), 49406);
  EXPECT_EQ(full.back(), 49407);
  for (size_t i = 1; i + 1 < full.size(); ++i) ASSERT_EQ(full[i], 2368) << i;

  EXPECT_EQ(row(tok.tokenize({"a photo of a cat"}, 4), 0),
            (std::vector<int64_t>{49406, 320, 1125, 49407}));
  // Exactly filling the context is not truncation.
  EXPECT_EQ(row(tok.tokenize({"a photo of a cat"}, 7), 0),
            (std::vector<int64_t>{49406, 320, 1125, 539, 320, 2368, 49407}));
  EXPECT_THROW(tok.tokenize({"x"}, 0), std::invalid_argument);
}

TEST(ClipTokenizer, MissingOrMalformedVocabularyIsAClearError) {
  const std::string missing = std::string(kTestTmpDir) + "/no-such-dir/bpe_missing.txt.gz";
  try {
    ClipTokenizer tok(missing);
    FAIL() << "no exception";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find(missing), std::string::npos) << e.what();
  }
  const std::filesystem::path bad = test::temp_dir("clip-tokenizer-bad") / "bad_vocab.txt";
  test::write_file(bad, "#version: 0.2\ni n\nt h\n");  // gzread reads plain files too
  try {
    ClipTokenizer tok(bad.string());
    FAIL() << "no exception";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("malformed"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find(bad.string()), std::string::npos) << e.what();
  }
}

TEST(ClipTokenizer, DefaultBpePathFromEnvironmentOrPython) {
  const char* old_vocab = std::getenv("CLIPREPRO_BPE_VOCAB");
  const char* old_python = std::getenv("CLIPREPRO_PYTHON");
  const std::string saved_vocab = old_vocab ? old_vocab : "";
  const std::string saved_python = old_python ? old_python : "";

  setenv("CLIPREPRO_BPE_VOCAB", vocab_path().c_str(), 1);
  EXPECT_EQ(ClipTokenizer::default_bpe_path(), vocab_path());
  setenv("CLIPREPRO_BPE_VOCAB", "/nonexistent/bpe.txt.gz", 1);
  EXPECT_THROW(ClipTokenizer::default_bpe_path(), std::runtime_error);
  unsetenv("CLIPREPRO_BPE_VOCAB");
  setenv("CLIPREPRO_PYTHON", kPython, 1);
  EXPECT_EQ(ClipTokenizer::default_bpe_path(), vocab_path());
  setenv("CLIPREPRO_PYTHON", "/nonexistent/python", 1);
  try {
    ClipTokenizer::default_bpe_path();
    ADD_FAILURE() << "no exception";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("CLIPREPRO_BPE_VOCAB"), std::string::npos) << e.what();
  }

  if (old_vocab)
    setenv("CLIPREPRO_BPE_VOCAB", saved_vocab.c_str(), 1);
  else
    unsetenv("CLIPREPRO_BPE_VOCAB");
  if (old_python)
    setenv("CLIPREPRO_PYTHON", saved_python.c_str(), 1);
  else
    unsetenv("CLIPREPRO_PYTHON");
}

}  // namespace
}  // namespace cliprepro
