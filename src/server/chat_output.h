// chat_output.h — a chat model's generated text, split into what OpenAI
// returns: `content`, `reasoning_content` and `tool_calls`.
//
// The model writes one stream of text; how it marks thinking and tool calls
// depends on its family, which DetectOutputFormat recognises from the chat
// template's source. ChatOutputParser takes the text piece by piece (as the
// scheduler streams it) and returns deltas; feeding the text in any split
// gives the same result as feeding it whole. A piece that may be the start
// of a marker ("<tool_" of "<tool_call>") is held until the next piece says
// what it is, so no half marker reaches `content`; Finish hands back what is
// still held, on the channel it was in.
//
// Tool calls are delivered whole: the parser holds a call's text until it is
// complete (its closing tag, or the end of its JSON value), parses it, and
// emits the call as two deltas — id + name with empty arguments, then the
// arguments string — the shape of OpenAI's streamed tool calls. A call that
// does not parse (bad JSON, no "name", over max_call_bytes) is given back as
// content, markers included: model output never makes a request fail.
//
// Memory: text is held only while it may be a marker (a few bytes), a run of
// whitespace (capped), or one tool call (at most max_call_bytes).
#pragma once

#include <cstddef>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

namespace cllm::server {

// ToolCallFormat is a family's syntax for tool calls in generated text.
enum class ToolCallFormat {
  kNone,         // the template renders no tools
  kHermes,       // Hermes 2/3, Qwen2.5, Qwen3: <tool_call>\n{"name":…,"arguments":{…}}\n</tool_call>, repeated
  kLlama3,       // Llama 3.1/3.2: a reply that is one {"name":…,"parameters":{…}}; or <|python_tag|>{…}
  kMistral,      // Mistral/Nemo: [TOOL_CALLS][{"name":…,"arguments":{…},"id":…}, …]
  kGranite,      // Granite 3.x: <|tool_call|>[{"name":…,"arguments":{…}}, …]
  kGlm,          // GLM 4.5/4.6: <tool_call>name\n<arg_key>k</arg_key>\n<arg_value>v</arg_value>…</tool_call>
  kUnsupported,  // renders tools in a syntax we do not parse (gpt-oss harmony)
};
const char* ToolCallFormatName(ToolCallFormat f);

struct OutputFormat {
  ToolCallFormat tools = ToolCallFormat::kNone;
  bool think_tags = false;  // reasoning between <think> and </think> (Qwen3, DeepSeek-R1, SmolLM3, GLM)
};

// DetectOutputFormat recognises the family from a chat template's source
// ("" — no template — gives the plain format: no tools, no reasoning).
OutputFormat DetectOutputFormat(std::string_view template_source);

// ToolMarkers lists the marker texts of `f` (openers and closers). The
// service maps those the vocabulary holds as control tokens back to their
// text, since the scheduler's pieces leave control tokens out.
std::vector<std::string_view> ToolMarkers(ToolCallFormat f);

// PromptOpensReasoning reports whether a rendered prompt ends inside an open
// <think> block (DeepSeek-R1's generation prompt ends "<think>\n"), so the
// reply starts as reasoning.
bool PromptOpensReasoning(std::string_view prompt);

// One streamed piece of a tool call. The first delta of call `index` has
// `id` and `name` set and `arguments` empty; later ones carry arguments text.
struct ToolCallDelta {
  size_t index = 0;
  std::string id;
  std::string name;
  std::string arguments;
};

struct OutputDelta {
  std::string content;
  std::string reasoning;
  std::vector<ToolCallDelta> tool_calls;
  bool empty() const { return content.empty() && reasoning.empty() && tool_calls.empty(); }
};

struct ToolCall {
  std::string id;
  std::string name;
  std::string arguments;  // a JSON object, as text
};

// ParsedOutput accumulates deltas into the non-streaming message.
struct ParsedOutput {
  std::string content;
  std::string reasoning;
  std::vector<ToolCall> tool_calls;
  void Add(const OutputDelta& d);
};

struct OutputParserOptions {
  OutputFormat format;
  bool parse_tools = false;          // the request has tools and tool_choice is not "none"
  bool parse_reasoning = true;       // split <think> blocks out (else they stay in content)
  bool starts_in_reasoning = false;  // the prompt opened <think> (PromptOpensReasoning)
  size_t max_call_bytes = 64 * 1024;
  size_t max_tool_calls = 64;        // later calls are given back as content
  // Tool-call ids; default: random "call_" + 24 alphanumerics (Mistral: 9
  // alphanumerics, the length its template requires of ids in history).
  std::function<std::string()> make_id;
};

class ChatOutputParser {
 public:
  explicit ChatOutputParser(OutputParserOptions options);

  // Feed takes the next piece of generated text and returns what is now
  // known; Finish returns the rest once generation has ended.
  OutputDelta Feed(std::string_view piece);
  OutputDelta Finish();

  size_t num_tool_calls() const { return num_calls_; }

 private:
  enum class Mode { kStart, kContent, kReasoning, kCall, kPlain };
  enum class CallKind { kTagged, kJsonValue };

  void Run(OutputDelta& out, bool final);
  bool StepStart(OutputDelta& out, bool final);
  bool StepContent(OutputDelta& out, bool final);
  bool StepReasoning(OutputDelta& out, bool final);
  bool StepCall(OutputDelta& out, bool final);
  void EnterCall(std::string_view opener, CallKind kind);
  void AfterCall();
  // EndCall parses one finished call's text: calls on success (then
  // AfterCall), else the raw text as content (then content mode).
  void EndCall(OutputDelta& out, std::string_view body, std::string_view closer);
  bool EmitCalls(OutputDelta& out, std::string_view body);
  std::string NewId();

  OutputParserOptions options_;
  std::vector<std::string> openers_;  // tool-call openers of the family, when parsing tools
  std::string closer_;                // kTagged calls' closer
  Mode mode_ = Mode::kStart;
  bool allow_think_ = true;     // a <think> may still open (only at the start of the reply)
  bool allow_bare_json_ = false;  // Llama 3: a reply (or the text after a call) starting with '{'
  bool strip_ws_ = false;       // drop whitespace before the next text (after </think> or a call)
  bool reasoning_seen_ = false;  // reasoning text emitted (its leading whitespace is dropped)
  std::string buf_;             // text not yet classified
  // The current tool call.
  std::string opener_;
  CallKind call_kind_ = CallKind::kTagged;
  size_t scan_ = 0;             // kJsonValue: bytes of buf_ scanned
  int depth_ = 0;
  bool in_string_ = false, escaped_ = false, value_started_ = false;
  size_t num_calls_ = 0;
};

}  // namespace cllm::server
