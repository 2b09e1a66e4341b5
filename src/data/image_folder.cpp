#include "src/data/image_folder.h"

#include <dirent.h>
#include <sys/stat.h>

#include <algorithm>
#include <cctype>
#include <stdexcept>

#include "src/data/image_decode.h"
#include "src/data/transforms.h"

namespace cliprepro {

namespace {

// Sorted entries of `dir` (POSIX: libtorch's exported std::filesystem symbols are broken).
std::vector<std::string> list_dir(const std::string& dir, bool want_dirs) {
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) throw std::runtime_error(dir + ": cannot open folder");
  std::vector<std::string> out;
  while (const dirent* e = ::readdir(d)) {
    const std::string name = e->d_name;
    if (name == "." || name == "..") continue;
    struct stat st {};
    if (::stat((dir + "/" + name).c_str(), &st) != 0) continue;
    if (S_ISDIR(st.st_mode) == want_dirs) out.push_back(name);
  }
  ::closedir(d);
  std::sort(out.begin(), out.end());
  return out;
}

enum class FileKind { kImage, kUndecodable, kOther };

// torchvision's IMG_EXTENSIONS: the first three cliprepro decodes; a file with one of the others
// would be a sample for OpenCLIP, so it is refused rather than left out.
FileKind file_kind(const std::string& name) {
  std::string lower = name;
  std::transform(lower.begin(), lower.end(), lower.begin(),
                 [](unsigned char c) { return char(std::tolower(c)); });
  const auto ends_with = [&](const char* ext) {
    const std::string e = ext;
    return lower.size() > e.size() && lower.compare(lower.size() - e.size(), e.size(), e) == 0;
  };
  for (const char* ext : {".jpg", ".jpeg", ".png"})
    if (ends_with(ext)) return FileKind::kImage;
  for (const char* ext : {".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp"})
    if (ends_with(ext)) return FileKind::kUndecodable;
  return FileKind::kOther;
}

// The files under `dir` in torchvision's make_dataset order: sorted(os.walk(dir,
// followlinks=True)), each folder's files sorted.
std::vector<std::string> walk_files(const std::string& dir) {
  std::vector<std::pair<std::string, std::vector<std::string>>> folders;
  std::vector<std::string> pending = {dir};
  while (!pending.empty()) {
    const std::string d = pending.back();
    pending.pop_back();
    folders.emplace_back(d, list_dir(d, false));
    for (const auto& sub : list_dir(d, true)) pending.push_back(d + "/" + sub);
  }
  std::sort(folders.begin(), folders.end());
  std::vector<std::string> out;
  for (const auto& [d, files] : folders)
    for (const auto& f : files) out.push_back(d + "/" + f);
  return out;
}

}  // namespace

std::vector<std::string> image_folder_classes(const std::string& root) {
  auto classes = list_dir(root, true);
  if (classes.empty()) throw std::runtime_error(root + ": no class subfolders");
  return classes;
}

ImageFolderSet load_image_folder(const std::string& root, int64_t image_size) {
  ImageFolderSet s;
  s.class_folders = image_folder_classes(root);
  std::vector<torch::Tensor> images;
  std::vector<int64_t> labels;
  for (size_t c = 0; c < s.class_folders.size(); ++c) {
    std::string name = s.class_folders[c];
    std::replace(name.begin(), name.end(), '_', ' ');
    s.class_names.push_back(name);
    const std::string dir = root + "/" + s.class_folders[c];
    const size_t before = images.size();
    for (const auto& path : walk_files(dir)) {
      const FileKind kind = file_kind(path);
      if (kind == FileKind::kOther) continue;
      if (kind == FileKind::kUndecodable) {
        throw std::runtime_error(path +
                                 ": torchvision's ImageFolder (so OpenCLIP) reads this "
                                 "extension, cliprepro decodes only .jpg/.jpeg/.png; convert it");
      }
      s.files.push_back(path);
      images.push_back(eval_transform(decode_image_file(path), image_size));
      labels.push_back(int64_t(c));
    }
    if (images.size() == before) {
      throw std::runtime_error(dir +
                               ": a class folder without images (torchvision's ImageFolder, so "
                               "OpenCLIP, refuses it too)");
    }
  }
  s.images = torch::stack(images);
  s.labels = torch::tensor(labels, torch::kInt64);
  return s;
}

std::vector<std::string> zero_shot_prompts(const std::vector<std::string>& class_names,
                                           const std::vector<std::string>& templates) {
  std::vector<std::string> out;
  for (const auto& c : class_names) {
    for (const auto& t : templates) {
      const auto at = t.find("{}");
      out.push_back(at == std::string::npos ? t : t.substr(0, at) + c + t.substr(at + 2));
    }
  }
  return out;
}

}  // namespace cliprepro
