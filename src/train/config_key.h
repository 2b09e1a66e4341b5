// A configuration key, defined once: TOML key, section, C++ member, type, default, doc, whether
// it shapes the trajectory, validator. The scenario reader, unknown-key detection, the resolved
// config, the resume trajectory check and docs/scenario-schema.md's key tables all iterate tables
// of these (src/train/train_config_keys.cpp, harness/scenario/scenario_keys.cpp).
#pragma once
#include <array>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <limits>
#include <nlohmann/json.hpp>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

namespace cliprepro {

// How a key is written in TOML. kSteps: a list of integers or "a:b[:k]" strings.
enum class ValueType { kBool, kInt, kFloat, kString, kStrings, kFloatPair, kSteps };
const char* value_type_name(ValueType t);

// A value as the scenario file gives it, already in the key's ValueType (the reader widens
// integers to floats and turns kSteps entries into strings).
using ConfigValue = std::variant<bool, int64_t, double, std::string, std::vector<std::string>,
                                 std::array<double, 2>>;

enum KeyFlags : unsigned {
  kPlain = 0,
  kTrajectory = 1u << 0,    // a resumed run must have the checkpoint's value
  kScenarioPath = 1u << 1,  // a relative path means relative to the scenario file
  kRequired = 1u << 2,      // required when its section is present
};

template <class Root>
struct ConfigKey {
  std::string section;  // "" = top level, else the [section] it is written in
  std::string key;      // the TOML key: OpenCLIP's flag name where it has one
  std::string member;   // the C++ member it sets, for docs and reviews
  ValueType type;
  std::string choices;      // enumerations: the accepted names, for docs
  std::string default_doc;  // empty: the default config's value
  std::string doc;          // one line of markdown
  unsigned flags = kPlain;
  std::function<void(Root&, const ConfigValue&)> set;  // validates; throws std::invalid_argument
  std::function<nlohmann::json(const Root&)> get;

  std::string qualified() const { return section.empty() ? key : section + "." + key; }
  bool has(KeyFlags f) const { return (flags & f) != 0; }
};

// Enumerations: a name table per enum (first name of a value = its canonical spelling).
template <class E>
struct EnumNames;  // static const std::vector<std::pair<std::string_view, E>>& get();

template <class E>
std::string_view enum_name(E v) {
  for (const auto& [n, e] : EnumNames<E>::get())
    if (e == v) return n;
  return "?";
}

template <class E>
std::string enum_choices() {
  std::string s;
  for (const auto& [n, e] : EnumNames<E>::get()) s += (s.empty() ? "" : ", ") + std::string(n);
  return s;
}

// Throws std::invalid_argument "<what> 'x' is not supported (supported: a, b)".
template <class E>
E parse_enum(const std::string& text, const std::string& what) {
  for (const auto& [n, e] : EnumNames<E>::get())
    if (n == text) return e;
  throw std::invalid_argument(what + " '" + text +
                              "' is not supported (supported: " + enum_choices<E>() + ")");
}

template <class E, class = void>
struct HasEnumNames : std::false_type {};
template <class E>
struct HasEnumNames<E, std::void_t<decltype(EnumNames<E>::get())>> : std::true_type {};

// ValueCodec<T>: the ValueType a member of type T is written as, and its conversions.
// Specialise it for other member types (harness/scenario/scenario_keys.cpp does).
template <class T, class = void>
struct ValueCodec;

template <>
struct ValueCodec<bool> {
  static constexpr ValueType kType = ValueType::kBool;
  static bool from(const ConfigValue& v, const std::string&) { return std::get<bool>(v); }
  static nlohmann::json to_json(bool v) { return v; }
};
template <class I>
struct ValueCodec<I, std::enable_if_t<std::is_integral_v<I> && !std::is_same_v<I, bool>>> {
  static constexpr ValueType kType = ValueType::kInt;
  static I from(const ConfigValue& v, const std::string& key) {
    const int64_t x = std::get<int64_t>(v);
    if (std::is_signed_v<I> ? (x < int64_t(std::numeric_limits<I>::min()) ||
                               x > int64_t(std::numeric_limits<I>::max()))
                            : x < 0)
      throw std::invalid_argument("'" + key + "' is out of range");
    return I(x);
  }
  static nlohmann::json to_json(I v) { return v; }
};
template <>
struct ValueCodec<double> {
  static constexpr ValueType kType = ValueType::kFloat;
  // No key means anything by NaN or infinity (TOML accepts nan and inf).
  static double from(const ConfigValue& v, const std::string& key) {
    const double x = std::get<double>(v);
    if (!std::isfinite(x)) throw std::invalid_argument("'" + key + "' must be a finite number");
    return x;
  }
  static nlohmann::json to_json(double v) { return v; }
};
template <>
struct ValueCodec<std::string> {
  static constexpr ValueType kType = ValueType::kString;
  static std::string from(const ConfigValue& v, const std::string&) {
    return std::get<std::string>(v);
  }
  static nlohmann::json to_json(const std::string& v) { return v; }
};
// Paths a scenario or study names (both tables have them; kScenarioPath resolves them).
template <>
struct ValueCodec<std::filesystem::path> {
  static constexpr ValueType kType = ValueType::kString;
  static std::filesystem::path from(const ConfigValue& v, const std::string&) {
    return std::get<std::string>(v);
  }
  static nlohmann::json to_json(const std::filesystem::path& v) { return v.string(); }
};

template <>
struct ValueCodec<std::vector<std::string>> {
  static constexpr ValueType kType = ValueType::kStrings;
  static std::vector<std::string> from(const ConfigValue& v, const std::string&) {
    return std::get<std::vector<std::string>>(v);
  }
  static nlohmann::json to_json(const std::vector<std::string>& v) { return v; }
};
template <>
struct ValueCodec<std::array<double, 2>> {
  static constexpr ValueType kType = ValueType::kFloatPair;
  static std::array<double, 2> from(const ConfigValue& v, const std::string&) {
    return std::get<std::array<double, 2>>(v);
  }
  static nlohmann::json to_json(const std::array<double, 2>& v) { return {v[0], v[1]}; }
};
template <class E>
struct ValueCodec<E, std::enable_if_t<HasEnumNames<E>::value>> {
  static constexpr ValueType kType = ValueType::kString;
  static E from(const ConfigValue& v, const std::string& key) {
    return parse_enum<E>(std::get<std::string>(v), key);
  }
  static nlohmann::json to_json(E v) { return std::string(enum_name(v)); }
};
// An optional enumeration: absent = chosen at run time (null in the resolved config).
template <class E>
struct ValueCodec<std::optional<E>, std::enable_if_t<HasEnumNames<E>::value>> {
  static constexpr ValueType kType = ValueType::kString;
  static std::optional<E> from(const ConfigValue& v, const std::string& key) {
    return ValueCodec<E>::from(v, key);
  }
  static nlohmann::json to_json(const std::optional<E>& v) {
    return v ? ValueCodec<E>::to_json(*v) : nlohmann::json(nullptr);
  }
};

// A validator: "" when the value is fine, else what is wrong ("must be > 0").
template <class T>
using Check = std::function<std::string(const T&)>;

namespace checks {
inline std::string bound_text(double b) {
  return b == double(int64_t(b)) ? std::to_string(int64_t(b)) : nlohmann::json(b).dump();
}
inline Check<double> greater_than(double lo) {
  return [lo](double v) { return v > lo ? "" : "must be > " + bound_text(lo); };
}
inline Check<double> at_least(double lo) {
  return [lo](double v) { return v >= lo ? "" : "must be >= " + bound_text(lo); };
}
inline Check<double> between(double lo, double hi) {  // [lo, hi]
  return [lo, hi](double v) {
    return v >= lo && v <= hi ? "" : "must be in [" + bound_text(lo) + ", " + bound_text(hi) + "]";
  };
}
inline Check<double> in_unit_interval(bool closed) {  // [0, 1) or [0, 1]
  return [closed](double v) {
    return v >= 0 && (closed ? v <= 1 : v < 1) ? ""
           : closed                            ? "must be in [0, 1]"
                                               : "must be in [0, 1)";
  };
}
}  // namespace checks

template <class Root, class Access>
ConfigKey<Root> make_key(std::string section, std::string key, std::string member, Access access,
                         unsigned flags, std::string doc,
                         Check<std::decay_t<std::invoke_result_t<Access, Root&>>> check = {},
                         std::string default_doc = {}) {
  using T = std::decay_t<std::invoke_result_t<Access, Root&>>;
  using Codec = ValueCodec<T>;
  ConfigKey<Root> k;
  k.section = std::move(section);
  k.key = std::move(key);
  k.member = std::move(member);
  k.type = Codec::kType;
  if constexpr (HasEnumNames<T>::value) k.choices = enum_choices<T>();
  if constexpr (requires { HasEnumNames<typename T::value_type>::value; }) {
    if constexpr (HasEnumNames<typename T::value_type>::value)
      k.choices = enum_choices<typename T::value_type>();
  }
  k.default_doc = std::move(default_doc);
  k.doc = std::move(doc);
  k.flags = flags;
  k.set = [access, check, name = k.key](Root& r, const ConfigValue& v) {
    T x = Codec::from(v, name);
    if (check) {
      if (const auto msg = check(x); !msg.empty())
        throw std::invalid_argument("'" + name + "' " + msg);
    }
    access(r) = std::move(x);
  };
  k.get = [access](const Root& r) { return Codec::to_json(access(const_cast<Root&>(r))); };
  return k;
}

// A key of a part (e.g. TrainConfig) as a key of the whole that holds it (e.g. Scenario).
template <class Whole, class Part, class Access>
ConfigKey<Whole> lift_key(const ConfigKey<Part>& k, const std::string& member_prefix,
                          Access part_of) {
  ConfigKey<Whole> w;
  w.section = k.section;
  w.key = k.key;
  w.member = member_prefix + k.member;
  w.type = k.type;
  w.choices = k.choices;
  w.default_doc = k.default_doc;
  w.doc = k.doc;
  w.flags = k.flags;
  w.set = [set = k.set, part_of](Whole& r, const ConfigValue& v) { set(part_of(r), v); };
  w.get = [get = k.get, part_of](const Whole& r) { return get(part_of(const_cast<Whole&>(r))); };
  return w;
}

// Keys as JSON: top-level keys at the top, section keys under their section.
template <class Root>
nlohmann::json keys_json(const std::vector<ConfigKey<Root>>& keys, const Root& r,
                         bool trajectory_only = false) {
  nlohmann::json j = nlohmann::json::object();
  for (const auto& k : keys) {
    if (trajectory_only && !k.has(kTrajectory)) continue;
    (k.section.empty() ? j[k.key] : j[k.section][k.key]) = k.get(r);
  }
  return j;
}

}  // namespace cliprepro

// One table row: the member path is written once, and its text becomes the doc's member column.
#define CLIPREPRO_KEY(Root, section, key, member, ...) \
  ::cliprepro::make_key<Root>(                         \
      section, key, #member, [](Root& c) -> decltype(auto) { return (c.member); }, __VA_ARGS__)
