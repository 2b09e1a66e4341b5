#include "src/data/openclip_zero_shot_metadata.h"

#include <nlohmann/json.hpp>
#include <stdexcept>

#include "src/project_python.h"

namespace cliprepro {

namespace {

constexpr size_t kImagenetClasses = 1000, kOpenAiTemplates = 80;

}  // namespace

ZeroShotMetadata openclip_imagenet_metadata() {
  // The templates are lambdas: formatting each with "{}" gives it back as a format string. The
  // file imports nothing, so running it alone is what importing it would define.
  const std::string out = project_python_output(
      "import importlib.util as u,os,json,runpy;"
      "p=os.path.join(u.find_spec('open_clip').submodule_search_locations[0],"
      "'zero_shot_metadata.py');"
      "g=runpy.run_path(p);"
      "print(json.dumps({'source':p,'classes':list(g['IMAGENET_CLASSNAMES']),"
      "'templates':[t('{}') for t in g['OPENAI_IMAGENET_TEMPLATES']]}))");
  const auto where = "OpenCLIP's zero-shot metadata (open_clip/zero_shot_metadata.py via '" +
                     project_python() + "')";
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(out);
  } catch (const nlohmann::json::exception&) {
    throw std::runtime_error("cannot read " + where +
                             ": is open_clip_torch installed? (set CLIPREPRO_PYTHON to a Python "
                             "that has it)");
  }
  ZeroShotMetadata m;
  m.source = j.at("source").get<std::string>();
  m.class_names = j.at("classes").get<std::vector<std::string>>();
  m.templates = j.at("templates").get<std::vector<std::string>>();
  bool one_placeholder = true;
  for (const auto& t : m.templates) {
    const auto at = t.find("{}");
    one_placeholder = one_placeholder && at != std::string::npos && t.find("{}", at + 2) == t.npos;
  }
  if (m.class_names.size() != kImagenetClasses || m.templates.size() != kOpenAiTemplates ||
      !one_placeholder) {
    throw std::runtime_error(
        m.source + ": expected " + std::to_string(kImagenetClasses) + " IMAGENET_CLASSNAMES and " +
        std::to_string(kOpenAiTemplates) + " one-placeholder OPENAI_IMAGENET_TEMPLATES, found " +
        std::to_string(m.class_names.size()) + " and " + std::to_string(m.templates.size()));
  }
  return m;
}

}  // namespace cliprepro
