// sampling_request.cc — the OpenAI sampling fields beyond temperature and
// top_p: n, presence_penalty, frequency_penalty, logit_bias, logprobs and
// top_logprobs. Ranges are OpenAI's; errors name the field in "param".
#include <nlohmann/json.hpp>

#include <charconv>
#include <cmath>

#include "server/openai_api.h"

namespace cllm::server {
namespace {

using nlohmann::json;

// Field reads `key` of `body` (nullptr when absent or null: the default).
const json* Field(const json& body, const char* key) {
  auto it = body.find(key);
  if (it == body.end() || it->is_null()) return nullptr;
  return &*it;
}

ApiResult<double> Number(const json& v, const char* name, double lo, double hi) {
  if (!v.is_number()) return BadField(std::string("'") + name + "' must be a number", name);
  const double d = v.get<double>();
  if (!std::isfinite(d) || d < lo || d > hi) {
    return BadField(std::string("'") + name + "' must be between " + json(lo).dump() + " and " + json(hi).dump(),
                    name);
  }
  return d;
}

ApiResult<int> SmallInt(const json& v, const char* name, int lo, int hi) {
  if (!v.is_number_integer()) return BadField(std::string("'") + name + "' must be an integer", name);
  // Unsigned values above INT64_MAX read as out of range, never wrap.
  const bool huge = v.is_number_unsigned() && v.get<uint64_t>() > static_cast<uint64_t>(hi);
  const int64_t i = huge ? static_cast<int64_t>(hi) + 1 : v.get<int64_t>();
  if (i < lo || i > hi) {
    return BadField(std::string("'") + name + "' must be between " + std::to_string(lo) + " and " + std::to_string(hi),
                    name);
  }
  return static_cast<int>(i);
}

// LogitBias reads {"<token id>": bias, ...}: ids are decimal strings (JSON
// keys), biases -100..100. Whether an id is in the vocabulary is the
// service's check (it knows the model).
ApiResult<std::vector<std::pair<int32_t, float>>> LogitBias(const json& v, const ApiLimits& limits) {
  if (!v.is_object()) return BadField("'logit_bias' must be an object of token id → bias", "logit_bias");
  if (v.size() > limits.max_logit_bias) {
    return BadField("'logit_bias' has more than " + std::to_string(limits.max_logit_bias) + " entries", "logit_bias");
  }
  std::vector<std::pair<int32_t, float>> out;
  for (const auto& [key, bias] : v.items()) {
    int32_t id = -1;
    const char* end = key.data() + key.size();
    auto [ptr, ec] = std::from_chars(key.data(), end, id);
    // One spelling per id ("7", never "07"): the same token twice would
    // add its biases past ±100.
    if (key.empty() || ec != std::errc() || ptr != end || id < 0 || (key.size() > 1 && key[0] == '0')) {
      return BadField("'logit_bias' keys must be token ids (non-negative integers, no leading zeros)", "logit_bias");
    }
    if (!bias.is_number() || !std::isfinite(bias.get<double>()) || bias.get<double>() < -100.0 ||
        bias.get<double>() > 100.0) {
      return BadField("'logit_bias' values must be numbers between -100 and 100", "logit_bias");
    }
    out.emplace_back(id, static_cast<float>(bias.get<double>()));
  }
  return out;
}

}  // namespace

ApiError BadField(std::string message, std::string param) {
  if (param.empty()) {
    const size_t open = message.find('\'');
    const size_t close = open == std::string::npos ? open : message.find('\'', open + 1);
    if (close != std::string::npos) param = message.substr(open + 1, close - open - 1);
  }
  ApiError e = MakeError(ApiErrc::kBadRequest, std::move(message));
  e.param = std::move(param);
  return e;
}

bool IsSamplingField(std::string_view key) {
  return key == "n" || key == "presence_penalty" || key == "frequency_penalty" || key == "logit_bias" ||
         key == "logprobs" || key == "top_logprobs";
}

ApiResult<Ok> ParseSamplingFields(const json& body, bool chat, const ApiLimits& limits, CompletionRequest* req) {
  SamplingRequest& s = req->sampling;
  if (const json* v = Field(body, "n")) {
    CLLM_ASSIGN_OR_RETURN(s.n, SmallInt(*v, "n", 1, limits.max_n));
  }
  if (const json* v = Field(body, "presence_penalty")) {
    CLLM_ASSIGN_OR_RETURN(double p, Number(*v, "presence_penalty", -2.0, 2.0));
    s.presence_penalty = static_cast<float>(p);
  }
  if (const json* v = Field(body, "frequency_penalty")) {
    CLLM_ASSIGN_OR_RETURN(double p, Number(*v, "frequency_penalty", -2.0, 2.0));
    s.frequency_penalty = static_cast<float>(p);
  }
  if (const json* v = Field(body, "logit_bias")) {
    CLLM_ASSIGN_OR_RETURN(s.logit_bias, LogitBias(*v, limits));
  }
  const json* logprobs = Field(body, "logprobs");
  const json* top = Field(body, "top_logprobs");
  if (chat) {
    // Chat: logprobs is a switch, top_logprobs (0..20) the alternatives and
    // only allowed with it (as OpenAI answers).
    bool on = false;
    if (logprobs) {
      if (!logprobs->is_boolean()) return BadField("'logprobs' must be a boolean", "logprobs");
      on = logprobs->get<bool>();
    }
    int k = 0;
    if (top) {
      CLLM_ASSIGN_OR_RETURN(k, SmallInt(*top, "top_logprobs", 0, 20));
      if (!on) return BadField("'top_logprobs' requires 'logprobs': true", "top_logprobs");
    }
    s.logprobs = on ? k : -1;
  } else {
    // Completions: logprobs is the number of alternatives, 0..5.
    if (top) return BadField("'top_logprobs' is a chat field; use 'logprobs': 0..5 here", "top_logprobs");
    if (logprobs) {
      CLLM_ASSIGN_OR_RETURN(s.logprobs, SmallInt(*logprobs, "logprobs", 0, 5));
    }
  }
  return OkStatus();
}

}  // namespace cllm::server
