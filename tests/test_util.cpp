#include "tests/test_util.h"

#include <ftw.h>
#include <hdf5.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>

#include <array>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <vector>

#include "harness/log/h5_types.h"
#include "test_paths.h"

namespace cliprepro::test {
namespace {
std::vector<std::filesystem::path>& made_temp_dirs() {
  static std::vector<std::filesystem::path> dirs;
  return dirs;
}
}  // namespace

void remove_tree(const std::filesystem::path& dir) {
  const auto remove_entry = [](const char* path, const struct stat*, int, struct FTW*) {
    return ::remove(path);
  };
  ::nftw(dir.c_str(), remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

void remove_temp_dirs() {
  for (const auto& dir : made_temp_dirs()) remove_tree(dir);
  made_temp_dirs().clear();
}

std::filesystem::path temp_dir(const std::string& name) {
  // mkdtemp, not remove_all + create: libtorch.so exports its own std::filesystem::remove_all,
  // which crashes when it interposes ours.
  std::filesystem::create_directories(kTestTmpDir);
  std::string tmpl = kTestTmpDir;
  tmpl.append("/").append(name).append("-XXXXXX");
  if (mkdtemp(tmpl.data()) == nullptr) throw std::runtime_error("mkdtemp failed: " + tmpl);
  made_temp_dirs().push_back(tmpl);
  return tmpl;
}

CommandResult run_command(const std::string& command_line) {
  const std::string cmd = command_line + " 2>&1";
  CommandResult r;
  FILE* p = popen(cmd.c_str(), "r");
  if (p == nullptr) throw std::runtime_error("popen failed: " + cmd);
  std::array<char, 4096> buf{};
  while (fgets(buf.data(), int(buf.size()), p) != nullptr) r.output += buf.data();
  const int status = pclose(p);
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

CommandResult run_cli(const std::string& args) {
  return run_command(std::string(kCliBin) + " " + args);
}

CommandResult run_python_script(const std::string& script, const std::string& args) {
  return run_command(std::string(kPython) + " " + kSourceDir + "/scripts/" + script + " " + args);
}

std::string torchrun(int world, const std::string& program) {
  return std::string(kPython) + " -m torch.distributed.run --standalone --nproc-per-node " +
         std::to_string(world) + " --no-python " + program;
}

std::string torchrun_python(int world, const std::string& script, const std::string& args) {
  return std::string(kPython) + " -m torch.distributed.run --standalone --nproc-per-node " +
         std::to_string(world) + " " + kSourceDir + "/scripts/" + script + " " + args;
}

void write_file(const std::filesystem::path& p, const std::string& text) {
  std::ofstream out(p, std::ios::binary);
  out << text;
}

std::string read_file(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::filesystem::path short_scenario(const std::filesystem::path& dir, const std::string& name,
                                     int steps, const std::string& extra_top_level) {
  std::ostringstream s;
  s << "name = \"" << name << "\"\n"
    << "model = \"tiny\"\nprecision = \"fp32\"\ndevice = \"cpu\"\n"
    << "train-num-samples = 128\nval-num-samples = 32\nbatch-size = 16\n"
    << "steps = " << steps
    << "\nepochs = 1\nwarmup = 2\nwd = 0.1\nbeta2 = 0.98\neps = 1e-6\nseed = 3\n"
    << extra_top_level << "[determinism]\nthreads = 2\n"
    << "[log]\nfull-steps = [0, 1, -1]\nfull-tensors = [\"params/text_projection\", \"grads/*\"]\n"
    << "[golden]\npath = \"" << name << "-golden.h5\"\nfull-steps = [1, -1]\n"
    << "full-tensors = [\"params/text_projection\", \"params/visual.attnpool.c_proj.weight\"]\n";
  const auto path = dir / (name + ".toml");
  write_file(path, s.str());
  return path;
}

void flip_bit(const std::filesystem::path& file, const std::string& dataset, int64_t row,
              int64_t element, int bit) {
  h5_quiet();
  H5Id f = h5_check(H5Fopen(file.c_str(), H5F_ACC_RDWR, H5P_DEFAULT), "open " + file.string());
  H5Id d = h5_check(H5Dopen2(f.get(), dataset.c_str(), H5P_DEFAULT), "open " + dataset);
  H5Id type = h5_check(H5Dget_type(d.get()), "type");
  H5Id space = h5_check(H5Dget_space(d.get()), "space");
  const int rank = H5Sget_simple_extent_ndims(space.get());
  std::vector<hsize_t> dims(static_cast<size_t>(rank));
  H5Sget_simple_extent_dims(space.get(), dims.data(), nullptr);
  std::vector<hsize_t> start(static_cast<size_t>(rank), 0);
  std::vector<hsize_t> count(dims);
  start[0] = hsize_t(row);
  count[0] = 1;
  size_t n = 1;
  for (int i = 1; i < rank; ++i) n *= dims[size_t(i)];
  const size_t es = H5Tget_size(type.get());
  std::vector<uint8_t> buf(n * es);
  h5_check_status(H5Sselect_hyperslab(space.get(), H5S_SELECT_SET, start.data(), nullptr,
                                      count.data(), nullptr),
                  "select");
  H5Id mem = h5_check(H5Screate_simple(rank, count.data(), nullptr), "mem space");
  h5_check_status(H5Dread(d.get(), type.get(), mem.get(), space.get(), H5P_DEFAULT, buf.data()),
                  "read");
  buf[size_t(element) * es + size_t(bit / 8)] ^= uint8_t(1u << (bit % 8));
  h5_check_status(H5Dwrite(d.get(), type.get(), mem.get(), space.get(), H5P_DEFAULT, buf.data()),
                  "write");
}

namespace {
// Sets element `index` of /progress ([step, rows]; logs from before 2026-12 hold only [step]).
void set_progress_element(hid_t file, size_t index, int64_t value) {
  H5Id d = h5_check(H5Dopen2(file, "progress", H5P_DEFAULT), "open /progress");
  H5Id space = h5_check(H5Dget_space(d.get()), "space");
  std::vector<int64_t> v(size_t(H5Sget_simple_extent_npoints(space.get())));
  h5_check_status(H5Dread(d.get(), H5T_NATIVE_INT64, H5S_ALL, H5S_ALL, H5P_DEFAULT, v.data()),
                  "read /progress");
  if (index >= v.size()) return;
  v[index] = value;
  h5_check_status(H5Dwrite(d.get(), H5T_NATIVE_INT64, H5S_ALL, H5S_ALL, H5P_DEFAULT, v.data()),
                  "write /progress");
}
}  // namespace

void edit_digest_rows(const std::filesystem::path& file,
                      const std::function<void(std::vector<DigestRow>&)>& edit) {
  h5_quiet();
  H5Id f = h5_check(H5Fopen(file.c_str(), H5F_ACC_RDWR, H5P_DEFAULT), "open " + file.string());
  H5Id d = h5_check(H5Dopen2(f.get(), kDigestTable, H5P_DEFAULT), "open /digests");
  H5Id ftype = h5_check(H5Dget_type(d.get()), "type");
  const bool stats = H5Tget_member_index(ftype.get(), "stats") >= 0;
  H5Id mem = digest_row_mem_type(stats);
  H5Id space = h5_check(H5Dget_space(d.get()), "space");
  hsize_t n = 0;
  H5Sget_simple_extent_dims(space.get(), &n, nullptr);
  std::vector<DigestRow> rows(n);
  if (n > 0) {
    h5_check_status(H5Dread(d.get(), mem.get(), H5S_ALL, H5S_ALL, H5P_DEFAULT, rows.data()),
                    "read");
  }
  edit(rows);
  hsize_t k = rows.size();
  h5_check_status(H5Dset_extent(d.get(), &k), "resize /digests");
  if (k > 0) {
    H5Id all = h5_check(H5Screate_simple(1, &k, nullptr), "space");
    h5_check_status(H5Dwrite(d.get(), mem.get(), all.get(), all.get(), H5P_DEFAULT, rows.data()),
                    "write");
  }
  // A consistent edit, as a deliberate forger would make it: /progress counts the new rows.
  if (H5Lexists(f.get(), "progress", H5P_DEFAULT) > 0) set_progress_element(f.get(), 1, int64_t(k));
}

void set_progress(const std::filesystem::path& file, std::optional<int64_t> step) {
  h5_quiet();
  H5Id f = h5_check(H5Fopen(file.c_str(), H5F_ACC_RDWR, H5P_DEFAULT), "open " + file.string());
  if (!step) {
    h5_check_status(H5Ldelete(f.get(), "progress", H5P_DEFAULT), "delete /progress");
    return;
  }
  set_progress_element(f.get(), 0, *step);
}

void set_root_attr(const std::filesystem::path& file, const std::string& name,
                   const std::string& value) {
  h5_quiet();
  H5Id f = h5_check(H5Fopen(file.c_str(), H5F_ACC_RDWR, H5P_DEFAULT), "open " + file.string());
  h5_write_string_attr(f.get(), name, value);
}

}  // namespace cliprepro::test
