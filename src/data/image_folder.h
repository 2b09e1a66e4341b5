// torchvision's ImageFolder as OpenCLIP's --imagenet-val uses it: one subfolder per class,
// classes sorted by folder name (label = index), each class's files in make_dataset's order
// (subfolders included), extensions .jpg/.jpeg/.png (case-insensitive), each image through
// OpenCLIP's eval transform.
#pragma once
#include <torch/types.h>

#include <string>
#include <vector>

namespace cliprepro {

struct ImageFolderSet {
  std::vector<std::string> class_folders;  // sorted
  std::vector<std::string> class_names;    // folder names with '_' read as ' '
  std::vector<std::string> files;          // every sample, class by class
  torch::Tensor images;                    // (N, 3, S, S) float32, eval-transformed
  torch::Tensor labels;                    // (N,) int64
};

// The class folders of `root`, sorted (label = index), without reading any image; throws
// naming the folder when there are none.
std::vector<std::string> image_folder_classes(const std::string& root);

// Throws naming the folder when it has no class subfolders or a class has no images, and naming
// the file when one cannot be decoded or has an extension torchvision reads and cliprepro does
// not (.bmp, .webp, …).
ImageFolderSet load_image_folder(const std::string& root, int64_t image_size);

// OpenCLIP's prompt expansion: every template (with "{}" for the class name) for every class,
// class-major: [c0 t0, c0 t1, ..., c1 t0, ...].
std::vector<std::string> zero_shot_prompts(const std::vector<std::string>& class_names,
                                           const std::vector<std::string>& templates);

}  // namespace cliprepro
