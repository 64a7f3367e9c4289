// `cllm model inspect FILE [--json]`: GGUF metadata, tensor table and totals.
// Bad files are one line `cllm: error: <path>: <code>: <detail>`, exit 1.
#include <nlohmann/json.hpp>

#include <cstdio>
#include <map>

#include "apps/cllm/command.h"
#include "engine/gguf/gguf.h"
#include "engine/kernels/kernels.h"

namespace cllm::app {
namespace {

using engine::GgufFile;
using engine::GgufValue;
using engine::GgufValueType;
using nlohmann::json;

constexpr size_t kArrayPreview = 6;

json ValueJson(const GgufValue& v, bool full) {
  if (v.type != GgufValueType::kArray) {
    return std::visit([](const auto& x) -> json {
      using T = std::decay_t<decltype(x)>;
      if constexpr (std::is_same_v<T, engine::GgufArray>) return nullptr;
      else return json(x);
    }, v.value);
  }
  const auto& a = std::get<engine::GgufArray>(v.value);
  json items = json::array();
  size_t n = full ? a.size() : std::min(a.size(), kArrayPreview);
  for (size_t i = 0; i < n; ++i) {
    if (!a.strings.empty()) items.push_back(a.strings[i]);
    else if (!a.ints.empty()) items.push_back(a.ints[i]);
    else if (!a.uints.empty()) items.push_back(a.uints[i]);
    else items.push_back(a.floats[i]);
  }
  return {{"type", engine::GgufValueTypeName(a.elem_type)}, {"length", a.size()}, {"items", items}};
}

std::string Shape(const std::vector<int64_t>& ne) {
  std::string s = "[";
  for (size_t i = 0; i < ne.size(); ++i) s += (i ? ", " : "") + std::to_string(ne[i]);
  return s + "]";
}

int Inspect(const std::string& path, bool as_json) {
  auto f = GgufFile::Open(path);
  if (!f.ok()) return Fail(path + ": " + engine::GgufErrcName(f.code()) + ": " + f.detail());
  std::map<std::string, std::pair<int64_t, uint64_t>> per_type;  // params, bytes
  int64_t params = 0;
  uint64_t bytes = 0;
  for (const auto& t : f->tensors()) {
    auto& e = per_type[engine::GetTypeTraits(t.type)->name];
    e.first += t.n_elements();
    e.second += t.n_bytes;
    params += t.n_elements();
    bytes += t.n_bytes;
  }
  if (as_json) {
    json j = {{"file", path}, {"version", f->version()}, {"alignment", f->alignment()},
              {"data_offset", f->data_offset()}, {"file_size", f->file_size()},
              {"parameters", params}, {"tensor_bytes", bytes}};
    for (const auto& [key, value] : f->metadata()) j["metadata"][key] = ValueJson(value, false);
    for (const auto& t : f->tensors()) {
      j["tensors"].push_back({{"name", t.name}, {"type", engine::GetTypeTraits(t.type)->name},
                              {"shape", t.ne}, {"offset", t.offset}, {"bytes", t.n_bytes}});
    }
    for (const auto& [type, e] : per_type) j["by_type"][type] = {{"parameters", e.first}, {"bytes", e.second}};
    std::printf("%s\n", j.dump(2, ' ', false, json::error_handler_t::replace).c_str());
    return 0;
  }
  std::printf("%s: GGUF v%u, %zu metadata entries, %zu tensors, alignment %llu, %llu bytes\n\n", path.c_str(),
              f->version(), f->metadata().size(), f->tensors().size(),
              static_cast<unsigned long long>(f->alignment()), static_cast<unsigned long long>(f->file_size()));
  std::printf("metadata:\n");
  for (const auto& [key, value] : f->metadata()) {
    std::string shown = ValueJson(value, false).dump(-1, ' ', false, json::error_handler_t::replace);
    if (shown.size() > 100) shown = shown.substr(0, 97) + "...";
    std::printf("  %-40s %s\n", key.c_str(), shown.c_str());
  }
  std::printf("\ntensors:\n  %-36s %-6s %-22s %12s %12s\n", "name", "type", "shape", "offset", "bytes");
  for (const auto& t : f->tensors()) {
    std::printf("  %-36s %-6s %-22s %12llu %12llu\n", t.name.c_str(), engine::GetTypeTraits(t.type)->name,
                Shape(t.ne).c_str(), static_cast<unsigned long long>(t.offset),
                static_cast<unsigned long long>(t.n_bytes));
  }
  std::printf("\ntotals: %lld parameters, %.2f MiB of tensor data\n", static_cast<long long>(params),
              static_cast<double>(bytes) / (1 << 20));
  for (const auto& [type, e] : per_type) {
    std::printf("  %-6s %12lld parameters %10.2f MiB\n", type.c_str(), static_cast<long long>(e.first),
                static_cast<double>(e.second) / (1 << 20));
  }
  return 0;
}

void Setup(CLI::App& app, CommandContext& ctx) {
  CLI::App* model = SubcommandGroup(app, "model", "Inspect, convert and seal model files");
  auto* cmd = model->add_subcommand("inspect", "Show a GGUF file's metadata, tensors and sizes");
  static std::string path;
  static bool json_out = false;
  cmd->add_option("file", path, "GGUF model file")->required();
  cmd->add_flag("--json", json_out, "Print one JSON object");
  cmd->callback([&ctx] { ctx.exit_code = Inspect(path, json_out); });
}

CommandRegistration reg{"model-inspect", 10, Setup};

}  // namespace
}  // namespace cllm::app
