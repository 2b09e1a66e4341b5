// OpenCLIP's zero-shot metadata as the installed wheel ships it (open_clip/zero_shot_metadata.py):
// what open_clip_train's zero_shot_eval classifies ImageNet with.
#pragma once
#include <string>
#include <vector>

namespace cliprepro {

struct ZeroShotMetadata {
  std::string source;                    // the file read
  std::vector<std::string> class_names;  // IMAGENET_CLASSNAMES, in class-index order
  std::vector<std::string> templates;    // OPENAI_IMAGENET_TEMPLATES, "{}" = class name
};

// Read through the project Python without importing open_clip (that imports torch); throws
// naming the Python and the file when it cannot, or when the file is not 1000 names and 80
// one-placeholder templates.
ZeroShotMetadata openclip_imagenet_metadata();

}  // namespace cliprepro
