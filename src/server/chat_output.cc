#include "server/chat_output.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <utility>

#include "base/json_guard.h"
#include "crypto/random.h"

namespace cllm::server {
namespace {

using nlohmann::json;

constexpr std::string_view kThinkOpen = "<think>";
constexpr std::string_view kThinkClose = "</think>";
// Whitespace held while it may turn out to be dropped (before a <think>,
// between tool calls, at the end of reasoning); past this it is text.
constexpr size_t kMaxHeldWhitespace = 1024;

bool IsSpace(char c) { return c == ' ' || c == '\n' || c == '\r' || c == '\t'; }

bool Contains(std::string_view s, std::string_view what) { return s.find(what) != std::string_view::npos; }

std::string_view Trim(std::string_view s) {
  while (!s.empty() && IsSpace(s.front())) s.remove_prefix(1);
  while (!s.empty() && IsSpace(s.back())) s.remove_suffix(1);
  return s;
}

// PartialSuffix is the length of the longest suffix of `text` that is a
// proper prefix of `marker`: bytes that may still become the marker.
size_t PartialSuffix(std::string_view text, std::string_view marker) {
  for (size_t len = std::min(marker.size() - 1, text.size()); len > 0; --len) {
    if (text.substr(text.size() - len) == marker.substr(0, len)) return len;
  }
  return 0;
}

std::string RandomAlnum(size_t n) {
  static constexpr std::string_view kAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
  std::string out;
  while (out.size() < n) {
    // Bytes >= 248 are rejected so each of the 62 characters is equally likely.
    for (uint8_t b : crypto::RandomBytes(n)) {
      if (b < 248 && out.size() < n) out += kAlphabet[b % kAlphabet.size()];
    }
  }
  return out;
}

// ParseJson parses model-written JSON: depth-checked, never throwing;
// discarded on failure.
json ParseJson(std::string_view text) {
  if (!JsonDepthWithin(text)) return json(json::value_t::discarded);
  return json::parse(text, nullptr, /*allow_exceptions=*/false);
}

std::string Dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

struct NamedCall {
  std::string name;
  std::string arguments;
};

// CallFromJson reads {"name": "...", "arguments"|"parameters": {...}}; the
// arguments may also be a string holding a JSON object, as some models write.
bool CallFromJson(const json& j, NamedCall* out) {
  if (!j.is_object()) return false;
  auto name = j.find("name");
  if (name == j.end() || !name->is_string() || name->get_ref<const std::string&>().empty()) return false;
  out->name = name->get<std::string>();
  auto args = j.find("arguments");
  if (args == j.end()) args = j.find("parameters");
  if (args == j.end() || args->is_null()) {
    out->arguments = "{}";
  } else if (args->is_object()) {
    out->arguments = Dump(*args);
  } else if (args->is_string()) {
    json inner = ParseJson(args->get_ref<const std::string&>());
    if (!inner.is_object()) return false;
    out->arguments = Dump(inner);
  } else {
    return false;
  }
  return true;
}

// CallsFromJsonValue reads one call object or a non-empty array of them.
bool CallsFromJsonValue(std::string_view text, std::vector<NamedCall>* out) {
  json j = ParseJson(text);
  if (j.is_object()) j = json::array({std::move(j)});
  if (!j.is_array() || j.empty()) return false;
  for (const auto& item : j) {
    NamedCall c;
    if (!CallFromJson(item, &c)) return false;
    out->push_back(std::move(c));
  }
  return true;
}

// GlmCall reads GLM's "name\n<arg_key>k</arg_key>\n<arg_value>v</arg_value>…":
// a value that parses as JSON is that value, anything else a string.
bool GlmCall(std::string_view body, NamedCall* out) {
  size_t first_key = body.find("<arg_key>");
  std::string_view name = Trim(body.substr(0, first_key));
  if (name.empty() || Contains(name, "<") || Contains(name, "\n") || Contains(name, "{")) return false;
  json args = json::object();
  std::string_view rest = first_key == std::string_view::npos ? std::string_view() : body.substr(first_key);
  while (!Trim(rest).empty()) {
    rest = Trim(rest);
    auto take = [&rest](std::string_view open, std::string_view close, std::string_view* out_text) {
      if (rest.substr(0, open.size()) != open) return false;
      size_t end = rest.find(close, open.size());
      if (end == std::string_view::npos) return false;
      *out_text = rest.substr(open.size(), end - open.size());
      rest = Trim(rest.substr(end + close.size()));
      return true;
    };
    std::string_view key, value;
    if (!take("<arg_key>", "</arg_key>", &key) || !take("<arg_value>", "</arg_value>", &value)) return false;
    json v = ParseJson(value);
    args[std::string(Trim(key))] = v.is_discarded() ? json(std::string(value)) : std::move(v);
  }
  out->name = std::string(name);
  out->arguments = Dump(args);
  return true;
}

}  // namespace

const char* ToolCallFormatName(ToolCallFormat f) {
  switch (f) {
    case ToolCallFormat::kNone: return "none";
    case ToolCallFormat::kHermes: return "hermes";
    case ToolCallFormat::kLlama3: return "llama3";
    case ToolCallFormat::kMistral: return "mistral";
    case ToolCallFormat::kGranite: return "granite";
    case ToolCallFormat::kGlm: return "glm";
    case ToolCallFormat::kUnsupported: return "unsupported";
  }
  return "unsupported";
}

OutputFormat DetectOutputFormat(std::string_view src) {
  OutputFormat f;
  f.think_tags = Contains(src, kThinkOpen) || Contains(src, kThinkClose);
  if (Contains(src, "<|channel|>")) {
    // gpt-oss harmony: channels, not tags; neither its reasoning nor its
    // tool calls are parsed.
    f.think_tags = false;
    f.tools = ToolCallFormat::kUnsupported;
  } else if (Contains(src, "<tool_call>")) {
    f.tools = Contains(src, "<arg_key>") ? ToolCallFormat::kGlm : ToolCallFormat::kHermes;
  } else if (Contains(src, "[TOOL_CALLS]")) {
    f.tools = ToolCallFormat::kMistral;
  } else if (Contains(src, "<|tool_call|>")) {
    f.tools = ToolCallFormat::kGranite;
  } else if (Contains(src, "<|python_tag|>") ||
             (Contains(src, "<|start_header_id|>") && Contains(src, "\"parameters\""))) {
    f.tools = ToolCallFormat::kLlama3;
  } else if (Contains(src, "tools")) {
    f.tools = ToolCallFormat::kUnsupported;
  }
  return f;
}

std::vector<std::string_view> ToolMarkers(ToolCallFormat f) {
  switch (f) {
    case ToolCallFormat::kHermes:
    case ToolCallFormat::kGlm: return {"<tool_call>", "</tool_call>"};
    case ToolCallFormat::kLlama3: return {"<|python_tag|>"};
    case ToolCallFormat::kMistral: return {"[TOOL_CALLS]"};
    case ToolCallFormat::kGranite: return {"<|tool_call|>"};
    case ToolCallFormat::kNone:
    case ToolCallFormat::kUnsupported: return {};
  }
  return {};
}

bool PromptOpensReasoning(std::string_view prompt) {
  while (!prompt.empty() && IsSpace(prompt.back())) prompt.remove_suffix(1);
  return prompt.size() >= kThinkOpen.size() && prompt.substr(prompt.size() - kThinkOpen.size()) == kThinkOpen;
}

void ParsedOutput::Add(const OutputDelta& d) {
  content += d.content;
  reasoning += d.reasoning;
  for (const auto& t : d.tool_calls) {
    if (t.index >= tool_calls.size()) tool_calls.resize(t.index + 1);
    ToolCall& c = tool_calls[t.index];
    if (!t.id.empty()) c.id = t.id;
    if (!t.name.empty()) c.name = t.name;
    c.arguments += t.arguments;
  }
}

// --- the parser ----------------------------------------------------------------

ChatOutputParser::ChatOutputParser(OutputParserOptions options) : options_(std::move(options)) {
  if (!options_.parse_reasoning) options_.format.think_tags = false;
  if (options_.parse_tools) {
    switch (options_.format.tools) {
      case ToolCallFormat::kHermes:
      case ToolCallFormat::kGlm:
        openers_ = {"<tool_call>"};
        closer_ = "</tool_call>";
        break;
      case ToolCallFormat::kLlama3:
        openers_ = {"<|python_tag|>"};
        allow_bare_json_ = true;
        break;
      case ToolCallFormat::kMistral: openers_ = {"[TOOL_CALLS]"}; break;
      case ToolCallFormat::kGranite: openers_ = {"<|tool_call|>"}; break;
      case ToolCallFormat::kNone:
      case ToolCallFormat::kUnsupported: options_.parse_tools = false; break;
    }
  }
  allow_think_ = options_.format.think_tags;
  if (options_.format.think_tags && options_.starts_in_reasoning) {
    mode_ = Mode::kReasoning;
    allow_think_ = false;
  } else if (!options_.format.think_tags && !options_.parse_tools) {
    mode_ = Mode::kPlain;  // nothing to look for: text passes through untouched
  }
}

std::string ChatOutputParser::NewId() {
  if (options_.make_id) return options_.make_id();
  if (options_.format.tools == ToolCallFormat::kMistral) return RandomAlnum(9);
  return "call_" + RandomAlnum(24);
}

OutputDelta ChatOutputParser::Feed(std::string_view piece) {
  OutputDelta out;
  buf_.append(piece);
  Run(out, /*final=*/false);
  return out;
}

OutputDelta ChatOutputParser::Finish() {
  OutputDelta out;
  Run(out, /*final=*/true);
  buf_.clear();
  return out;
}

void ChatOutputParser::Run(OutputDelta& out, bool final) {
  // Each step consumes what it can decide and says whether another step may
  // decide more (a mode change); false means it waits for more text.
  for (;;) {
    bool more = false;
    switch (mode_) {
      case Mode::kStart: more = StepStart(out, final); break;
      case Mode::kContent: more = StepContent(out, final); break;
      case Mode::kReasoning: more = StepReasoning(out, final); break;
      case Mode::kCall: more = StepCall(out, final); break;
      case Mode::kPlain:
        out.content += buf_;
        buf_.clear();
        break;
    }
    if (!more) return;
  }
}

// StepStart decides what the reply (or the text after a tool call or
// </think>) is: a think block, a tool call, or content.
bool ChatOutputParser::StepStart(OutputDelta& out, bool final) {
  size_t ws = 0;
  while (ws < buf_.size() && IsSpace(buf_[ws])) ++ws;
  if (ws == buf_.size()) {
    if (final) {
      if (!strip_ws_) out.content += buf_;
      buf_.clear();
      return false;
    }
    if (ws <= kMaxHeldWhitespace) return false;
  } else {
    std::string_view rest = std::string_view(buf_).substr(ws);
    if (allow_think_) {
      if (rest.substr(0, kThinkOpen.size()) == kThinkOpen) {
        buf_.erase(0, ws + kThinkOpen.size());
        mode_ = Mode::kReasoning;
        allow_think_ = false;
        return true;
      }
      if (!final && kThinkOpen.substr(0, rest.size()) == rest) return false;
    }
    for (const auto& opener : openers_) {
      if (rest.substr(0, opener.size()) == opener) {
        buf_.erase(0, ws + opener.size());
        EnterCall(opener, closer_.empty() ? CallKind::kJsonValue : CallKind::kTagged);
        return true;
      }
      if (!final && std::string_view(opener).substr(0, rest.size()) == rest) return false;
    }
    if (allow_bare_json_ && rest.front() == '{') {
      buf_.erase(0, ws);
      EnterCall("", CallKind::kJsonValue);
      return true;
    }
  }
  if (strip_ws_) buf_.erase(0, ws);
  strip_ws_ = false;
  allow_think_ = false;
  allow_bare_json_ = false;
  mode_ = Mode::kContent;
  return true;
}

bool ChatOutputParser::StepContent(OutputDelta& out, bool final) {
  size_t first = std::string::npos;
  const std::string* found = nullptr;
  for (const auto& opener : openers_) {
    size_t p = buf_.find(opener);
    if (p < first) {
      first = p;
      found = &opener;
    }
  }
  if (found) {
    out.content.append(buf_, 0, first);
    buf_.erase(0, first + found->size());
    EnterCall(*found, closer_.empty() ? CallKind::kJsonValue : CallKind::kTagged);
    return true;
  }
  size_t hold = 0;
  if (!final) {
    for (const auto& opener : openers_) hold = std::max(hold, PartialSuffix(buf_, opener));
  }
  out.content.append(buf_, 0, buf_.size() - hold);
  buf_.erase(0, buf_.size() - hold);
  return false;
}

bool ChatOutputParser::StepReasoning(OutputDelta& out, bool final) {
  if (!reasoning_seen_) {
    size_t ws = 0;
    while (ws < buf_.size() && IsSpace(buf_[ws])) ++ws;
    buf_.erase(0, ws);
  }
  size_t close = buf_.find(kThinkClose);
  if (close != std::string::npos || final) {
    std::string_view text = std::string_view(buf_).substr(0, close);
    while (!text.empty() && IsSpace(text.back())) text.remove_suffix(1);
    out.reasoning += text;
    reasoning_seen_ = reasoning_seen_ || !text.empty();
    if (close == std::string::npos) {
      buf_.clear();
      return false;
    }
    buf_.erase(0, close + kThinkClose.size());
    mode_ = Mode::kStart;
    strip_ws_ = true;
    allow_think_ = false;
    return true;
  }
  // Hold a partial "</think>" and the whitespace before it: whitespace that
  // ends the reasoning is dropped.
  size_t end = buf_.size() - PartialSuffix(buf_, kThinkClose);
  size_t keep_from = end;
  while (keep_from > 0 && IsSpace(buf_[keep_from - 1]) && end - keep_from < kMaxHeldWhitespace) --keep_from;
  if (keep_from > 0) {
    out.reasoning.append(buf_, 0, keep_from);
    reasoning_seen_ = true;
    buf_.erase(0, keep_from);
  }
  return false;
}

void ChatOutputParser::EnterCall(std::string_view opener, CallKind kind) {
  mode_ = Mode::kCall;
  opener_ = std::string(opener);
  call_kind_ = kind;
  scan_ = 0;
  depth_ = 0;
  in_string_ = escaped_ = value_started_ = false;
}

void ChatOutputParser::AfterCall() {
  mode_ = Mode::kStart;
  strip_ws_ = true;
  allow_think_ = false;
  allow_bare_json_ = options_.format.tools == ToolCallFormat::kLlama3;
}

bool ChatOutputParser::StepCall(OutputDelta& out, bool final) {
  if (call_kind_ == CallKind::kTagged) {
    size_t close = buf_.find(closer_);
    if (close != std::string::npos && close <= options_.max_call_bytes) {
      EndCall(out, std::string_view(buf_).substr(0, close), closer_);
      buf_.erase(0, close + closer_.size());
      return true;
    }
    if (close != std::string::npos || buf_.size() > options_.max_call_bytes + closer_.size()) {
      // Too long to be a call we would hold: the rest of the reply is text.
      out.content += opener_;
      mode_ = Mode::kPlain;
      return true;
    }
    if (final) {
      // No closing tag (the model ended right after the call): a call if it parses.
      EndCall(out, buf_, "");
      buf_.clear();
    }
    return false;
  }
  // A JSON value: scan to where its brackets balance (strings skipped).
  while (scan_ < buf_.size()) {
    const char c = buf_[scan_++];
    if (!value_started_) {
      if (IsSpace(c)) continue;
      if (c != '{' && c != '[') {  // the opener is not followed by JSON: text
        out.content += opener_;
        mode_ = Mode::kContent;
        return true;
      }
      value_started_ = true;
      depth_ = 1;
    } else if (in_string_) {
      if (escaped_) {
        escaped_ = false;
      } else if (c == '\\') {
        escaped_ = true;
      } else if (c == '"') {
        in_string_ = false;
      }
    } else if (c == '"') {
      in_string_ = true;
    } else if (c == '{' || c == '[') {
      ++depth_;
    } else if ((c == '}' || c == ']') && --depth_ == 0) {
      if (scan_ > options_.max_call_bytes) break;
      EndCall(out, std::string_view(buf_).substr(0, scan_), "");
      buf_.erase(0, scan_);
      return true;
    }
  }
  if (scan_ > options_.max_call_bytes) {
    out.content += opener_;
    mode_ = Mode::kPlain;
    return true;
  }
  if (final) {
    EndCall(out, buf_, "");  // unbalanced: given back as text
    buf_.clear();
  }
  return false;
}

void ChatOutputParser::EndCall(OutputDelta& out, std::string_view body, std::string_view closer) {
  if (EmitCalls(out, body)) {
    AfterCall();
    return;
  }
  // Not a call: the text as the model wrote it, and what follows is content.
  out.content += opener_;
  out.content += body;
  out.content += closer;
  mode_ = Mode::kContent;
}

bool ChatOutputParser::EmitCalls(OutputDelta& out, std::string_view body) {
  std::vector<NamedCall> calls;
  bool ok = false;
  switch (options_.format.tools) {
    case ToolCallFormat::kHermes: {
      NamedCall c;
      ok = CallFromJson(ParseJson(Trim(body)), &c);
      if (ok) calls.push_back(std::move(c));
      break;
    }
    case ToolCallFormat::kGlm: {
      NamedCall c;
      ok = GlmCall(body, &c);
      if (ok) calls.push_back(std::move(c));
      break;
    }
    case ToolCallFormat::kLlama3:
    case ToolCallFormat::kMistral:
    case ToolCallFormat::kGranite: ok = CallsFromJsonValue(Trim(body), &calls); break;
    case ToolCallFormat::kNone:
    case ToolCallFormat::kUnsupported: break;
  }
  if (!ok || calls.empty() || num_calls_ + calls.size() > options_.max_tool_calls) return false;
  for (auto& c : calls) {
    out.tool_calls.push_back({num_calls_, NewId(), std::move(c.name), ""});
    out.tool_calls.push_back({num_calls_, "", "", std::move(c.arguments)});
    ++num_calls_;
  }
  return true;
}

}  // namespace cllm::server
