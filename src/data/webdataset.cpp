#include "src/data/webdataset.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <regex>
#include <stdexcept>

namespace cliprepro {
namespace {

// Index of the '}' matching s[open], skipping '\'-escaped characters; npos if none.
size_t matching_brace(const std::string& s, size_t open) {
  int depth = 0;
  for (size_t i = open; i < s.size(); ++i) {
    if (s[i] == '\\') {
      ++i;
    } else if (s[i] == '{') {
      ++depth;
    } else if (s[i] == '}' && --depth == 0) {
      return i;
    }
  }
  return std::string::npos;
}

std::vector<std::string> split_top_level_commas(const std::string& s) {
  std::vector<std::string> parts;
  std::string cur;
  int depth = 0;
  for (size_t i = 0; i < s.size(); ++i) {
    const char c = s[i];
    if (c == '\\' && i + 1 < s.size()) {
      cur += c;
      cur += s[++i];
      continue;
    }
    if (c == '{') ++depth;
    if (c == '}') --depth;
    if (c == ',' && depth == 0) {
      parts.push_back(cur);
      cur.clear();
    } else {
      cur += c;
    }
  }
  parts.push_back(cur);
  return parts;
}

bool int_range(const std::string& inner, std::vector<std::string>* out) {
  static const std::regex kRange(R"(^(-?\d+)\.\.(-?\d+)(?:\.\.-?(\d+))?$)");
  std::smatch m;
  if (!std::regex_match(inner, m, kRange)) return false;
  const std::string left = m[1], right = m[2];
  size_t padding = 0;
  for (const auto& b : {left, right}) {
    if (b != "0" && b != "-0" && (b.rfind("0", 0) == 0 || b.rfind("-0", 0) == 0)) {
      padding = std::max(left.size(), right.size());
    }
  }
  const long long start = std::stoll(left), end = std::stoll(right);
  long long step = m[3].matched ? std::stoll(m[3]) : 1;
  if (step == 0) step = 1;
  char buf[64];
  auto emit = [&](long long v) {
    std::snprintf(buf, sizeof(buf), "%0*lld", int(padding), v);
    out->push_back(buf);
  };
  if (start <= end) {
    for (long long v = start; v <= end; v += step) emit(v);
  } else {
    for (long long v = start; v >= end; v -= step) emit(v);
  }
  return true;
}

// Expansions that still carry '\' escapes (removed once, at the top).
std::vector<std::string> expand_raw(const std::string& s) {
  size_t open = std::string::npos;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\\') {
      ++i;
    } else if (s[i] == '{') {
      open = i;
      break;
    }
  }
  if (open == std::string::npos) return {s};
  const size_t close = matching_brace(s, open);
  if (close == std::string::npos) return {s};
  const std::string prefix = s.substr(0, open), inner = s.substr(open + 1, close - open - 1);
  std::vector<std::string> items;
  if (!int_range(inner, &items)) {
    const auto parts = split_top_level_commas(inner);
    if (parts.size() == 1) {
      for (const auto& x : expand_raw(inner)) items.push_back("{" + x + "}");  // "{a}" is literal
    } else {
      for (const auto& p : parts) {
        for (auto& x : expand_raw(p)) items.push_back(std::move(x));
      }
    }
  }
  const auto rests = expand_raw(s.substr(close + 1));
  std::vector<std::string> out;
  for (const auto& item : items) {
    for (const auto& rest : rests) out.push_back(prefix + item + rest);
  }
  return out;
}

std::string unescape(const std::string& s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\\' && i + 1 < s.size()) ++i;
    out += s[i];
  }
  return out;
}

uint64_t parse_octal(const char* p, size_t n, const std::string& where) {
  if (static_cast<unsigned char>(p[0]) & 0x80) {  // GNU base-256 for large sizes
    uint64_t v = 0;
    for (size_t i = 1; i < n; ++i) v = (v << 8) | static_cast<unsigned char>(p[i]);
    return v;
  }
  uint64_t v = 0;
  size_t i = 0;
  while (i < n && (p[i] == ' ' || p[i] == '\0')) ++i;
  for (; i < n && p[i] >= '0' && p[i] <= '7'; ++i) v = v * 8 + uint64_t(p[i] - '0');
  if (i < n && p[i] != ' ' && p[i] != '\0') {
    throw std::runtime_error(where + ": corrupt tar header (bad octal field)");
  }
  return v;
}

std::string cstr(const char* p, size_t n) { return std::string(p, strnlen(p, n)); }

struct Fd {
  int fd;
  ~Fd() {
    if (fd >= 0) ::close(fd);
  }
};

void pread_all(int fd, uint8_t* buf, uint64_t n, uint64_t off, const std::string& where) {
  while (n > 0) {
    const ssize_t r = ::pread(fd, buf, n, off_t(off));
    if (r <= 0) throw std::runtime_error(where + ": read error or unexpected end of file");
    buf += r;
    n -= uint64_t(r);
    off += uint64_t(r);
  }
}

// webdataset's base_plus_ext: ("dir/abc", "def.jpg") from "dir/abc.def.jpg"; false if no dot.
bool base_plus_ext(const std::string& path, std::string* base, std::string* ext) {
  const size_t slash = path.rfind('/');
  const size_t start = slash == std::string::npos ? 0 : slash + 1;
  const size_t dot = path.find('.', start);
  if (dot == std::string::npos || dot == start) return false;
  *base = path.substr(0, dot);
  *ext = path.substr(dot + 1);
  return true;
}

}  // namespace

std::vector<std::string> expand_braces(const std::string& pattern) {
  std::vector<std::string> out;
  for (const auto& s : expand_raw(pattern)) out.push_back(unescape(s));
  return out;
}

std::vector<std::string> expand_shard_list(const std::string& spec) {
  std::vector<std::string> out;
  size_t start = 0;
  while (true) {
    const size_t sep = spec.find("::", start);
    const std::string part =
        spec.substr(start, sep == std::string::npos ? std::string::npos : sep - start);
    for (auto& s : expand_braces(part)) out.push_back(std::move(s));
    if (sep == std::string::npos) break;
    start = sep + 2;
  }
  return out;
}

std::vector<TarMember> list_tar(const std::string& path) {
  Fd f{::open(path.c_str(), O_RDONLY)};
  if (f.fd < 0) throw std::runtime_error(path + ": cannot open tar shard");
  struct stat st {};
  if (::fstat(f.fd, &st) != 0) throw std::runtime_error(path + ": cannot stat tar shard");
  const uint64_t file_size = uint64_t(st.st_size);
  std::vector<TarMember> members;
  std::string long_name;  // from a GNU 'L' or pax 'x' header, for the next member
  uint64_t off = 0;
  char h[512];
  while (off + 512 <= file_size) {
    const std::string where = path + " (header at byte " + std::to_string(off) + ")";
    pread_all(f.fd, reinterpret_cast<uint8_t*>(h), 512, off, where);
    if (std::all_of(h, h + 512, [](char c) { return c == '\0'; })) break;  // end of archive
    unsigned sum = 0;
    for (int i = 0; i < 512; ++i) {
      sum += (i >= 148 && i < 156) ? unsigned(' ') : static_cast<unsigned char>(h[i]);
    }
    if (parse_octal(h + 148, 8, where) != sum) {
      throw std::runtime_error(where + ": corrupt tar header (checksum mismatch)");
    }
    const uint64_t size = parse_octal(h + 124, 12, where);
    const char type = h[156];
    std::string name = cstr(h, 100);
    if (std::memcmp(h + 257, "ustar", 5) == 0) {
      const std::string prefix = cstr(h + 345, 155);
      if (!prefix.empty()) name = prefix + "/" + name;
    }
    const uint64_t data = off + 512;
    if (size > file_size - data) {  // not data + size: a base-256 size can wrap it
      throw std::runtime_error(path + ": truncated tar: member '" + name + "' needs " +
                               std::to_string(size) + " bytes at offset " + std::to_string(data) +
                               ", the file has " + std::to_string(file_size));
    }
    if (type == 'L' || type == 'x') {
      std::string payload(size, '\0');
      pread_all(f.fd, reinterpret_cast<uint8_t*>(payload.data()), size, data, where);
      if (type == 'L') {
        long_name = payload.substr(0, payload.find('\0'));
      } else {
        // pax records "<len> key=value\n", <len> counting the whole record; only path matters
        // here. Malformed records are refused, as Python's tarfile does ("invalid header").
        size_t p = 0;
        while (p < payload.size() && payload[p] != '\0') {
          size_t len = 0, q = p;
          for (; q < payload.size() && q - p < 19 && payload[q] >= '0' && payload[q] <= '9'; ++q) {
            len = len * 10 + size_t(payload[q] - '0');
          }
          // The record holds its digits, the space, "k=v" (at least "k=") and the newline.
          if (q == p || q >= payload.size() || payload[q] != ' ' || len < q - p + 4 ||
              len > payload.size() - p || payload[p + len - 1] != '\n') {
            throw std::runtime_error(where + ": corrupt pax header record at byte " +
                                     std::to_string(data + p));
          }
          const std::string rec = payload.substr(q + 1, p + len - q - 2);
          if (rec.rfind("path=", 0) == 0) long_name = rec.substr(5);
          p += len;
        }
      }
    } else {
      if (!long_name.empty()) name = long_name;
      long_name.clear();
      if (type == '0' || type == '\0' || type == '7') members.push_back({name, data, size});
    }
    off = data + (size + 511) / 512 * 512;
  }
  return members;
}

WebDataset::WebDataset(const std::string& shard_spec) : WebDataset(expand_shard_list(shard_spec)) {}

WebDataset::WebDataset(const std::vector<std::string>& shards) : shards_(shards) {
  if (shards_.empty()) throw std::runtime_error("webdataset: empty shard list");
  for (size_t i = 0; i < shards_.size(); ++i) index_shard(i);
}

void WebDataset::index_shard(size_t shard) {
  const std::string& path = shards_[shard];
  static const char* const kImageExts[] = {"jpg", "png", "jpeg", "webp"};
  struct Current {
    std::string key;
    std::vector<std::pair<std::string, TarMember>> parts;
  };
  auto finish = [&](const Current& c) {
    if (c.parts.empty()) return;
    auto find = [&](const std::string& ext) -> const TarMember* {
      for (const auto& [e, m] : c.parts) {
        if (e == ext) return &m;
      }
      return nullptr;
    };
    const TarMember* text = find("txt");
    const TarMember* image = nullptr;
    std::string image_ext;
    for (const char* ext : kImageExts) {
      if ((image = find(ext)) != nullptr) {
        image_ext = ext;
        break;
      }
    }
    const std::string source = path + ":" + c.key;
    if (text == nullptr || image == nullptr) {
      skipped_.push_back({source, text == nullptr ? "no txt caption member" : "no image member"});
      return;
    }
    samples_.push_back({shard, c.key, image_ext, *image, *text});
  };
  // webdataset's "__*__" metadata members at the top level are not sample parts.
  Current cur;
  bool have = false;
  for (const auto& m : list_tar(path)) {
    const size_t slash = m.name.rfind('/');
    const std::string base = m.name.substr(slash == std::string::npos ? 0 : slash + 1);
    if (slash == std::string::npos && base.size() >= 4 && base.rfind("__", 0) == 0 &&
        base.compare(base.size() - 2, 2, "__") == 0) {
      continue;
    }
    std::string key, ext;
    if (!base_plus_ext(m.name, &key, &ext)) continue;
    std::transform(ext.begin(), ext.end(), ext.begin(),
                   [](unsigned char ch) { return char(std::tolower(ch)); });
    const bool repeated = std::any_of(cur.parts.begin(), cur.parts.end(),
                                      [&](const auto& p) { return p.first == ext; });
    if (!have || key != cur.key || repeated) {
      if (have) finish(cur);
      cur = Current{key, {}};
      have = true;
    }
    cur.parts.emplace_back(ext, m);
  }
  if (have) finish(cur);
}

std::string WebDataset::source(size_t i) const {
  const Entry& e = samples_.at(i);
  return shards_[e.shard] + ":" + e.key;
}

RawSample WebDataset::get(size_t i) const {
  const Entry& e = samples_.at(i);
  const std::string& path = shards_[e.shard];
  RawSample s;
  s.key = e.key;
  s.source = source(i);
  Fd f{::open(path.c_str(), O_RDONLY)};
  if (f.fd < 0) throw std::runtime_error(s.source + ": cannot open tar shard");
  s.image_bytes.resize(e.image.size);
  pread_all(f.fd, s.image_bytes.data(), e.image.size, e.image.offset, s.source + "." + e.image_ext);
  s.caption.resize(e.text.size);
  pread_all(f.fd, reinterpret_cast<uint8_t*>(s.caption.data()), e.text.size, e.text.offset,
            s.source + ".txt");
  return s;
}

}  // namespace cliprepro
