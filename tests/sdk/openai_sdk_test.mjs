// The official OpenAI Node SDK against a cllm endpoint (cllm proxy in front
// of cllm-server): what an application written for OpenAI does, asserted.
//
//   node openai_sdk_test.mjs --base-url http://127.0.0.1:PORT/v1 --api-key KEY --model NAME [--all]
//
// Without --all: chat (non-streaming), streaming chat, a bad key. --all adds
// tools (tool_choice naming a function) and structured output
// (response_format json_schema and json_object), on a model whose chat
// template renders tools. Prints one "ok - NAME" line per check; exits
// 1 with "not ok - NAME: why" at the first failure.
import OpenAI from 'openai';

function arg(name, fallback) {
  const i = process.argv.indexOf(name);
  return i >= 0 && i + 1 < process.argv.length ? process.argv[i + 1] : fallback;
}
const baseURL = arg('--base-url');
const apiKey = arg('--api-key');
const model = arg('--model');
const all = process.argv.includes('--all');
if (!baseURL || !apiKey || !model) {
  console.error('usage: openai_sdk_test.mjs --base-url URL --api-key KEY --model NAME [--all]');
  process.exit(2);
}

// No retries: a failure must show, not be papered over.
const client = new OpenAI({ baseURL, apiKey, maxRetries: 0, timeout: 20000 });

class CheckError extends Error {}
function expect(cond, what) {
  if (!cond) throw new CheckError(what);
}
const user = [{ role: 'user', content: 'Once upon a time there was a little dog.' }];

async function chat() {
  const r = await client.chat.completions.create({ model, messages: user, max_tokens: 16, temperature: 0 });
  expect(r.object === 'chat.completion', `object is ${r.object}`);
  expect(typeof r.id === 'string' && r.id.length > 0, 'id is missing');
  expect(r.model === model, `model is ${r.model}`);
  expect(Array.isArray(r.choices) && r.choices.length === 1, 'expected one choice');
  const c = r.choices[0];
  expect(c.index === 0, `choice index ${c.index}`);
  expect(c.message.role === 'assistant', `role ${c.message.role}`);
  expect(typeof c.message.content === 'string' && c.message.content.length > 0, 'empty content');
  expect(['stop', 'length'].includes(c.finish_reason), `finish_reason ${c.finish_reason}`);
  expect(r.usage.prompt_tokens > 0 && r.usage.completion_tokens > 0, `usage ${JSON.stringify(r.usage)}`);
  expect(r.usage.total_tokens === r.usage.prompt_tokens + r.usage.completion_tokens, 'total_tokens');
  // Deterministic at temperature 0: the same request, the same answer.
  const again = await client.chat.completions.create({ model, messages: user, max_tokens: 16, temperature: 0 });
  expect(again.choices[0].message.content === c.message.content, 'temperature 0 is not deterministic');
}

async function streamingChat() {
  const stream = await client.chat.completions.create({
    model, messages: user, max_tokens: 24, temperature: 0, stream: true, stream_options: { include_usage: true },
  });
  let id = null, role = null, text = '', finish = null, usage = null, chunks = 0, afterFinish = 0;
  for await (const chunk of stream) {
    chunks++;
    expect(chunk.object === 'chat.completion.chunk', `chunk object ${chunk.object}`);
    id = id ?? chunk.id;
    expect(chunk.id === id, 'chunk ids differ');
    if (chunk.usage) usage = chunk.usage;
    for (const ch of chunk.choices) {
      expect(finish === null, 'a choice chunk after finish_reason');
      if (ch.delta.role) role = ch.delta.role;
      if (ch.delta.content) text += ch.delta.content;
      if (ch.finish_reason) finish = ch.finish_reason;
    }
    if (finish !== null && chunk.choices.length === 0) afterFinish++;
  }
  expect(chunks >= 3, `only ${chunks} chunks`);
  expect(role === 'assistant', `role ${role}`);
  expect(text.length > 0, 'no streamed text');
  expect(['stop', 'length'].includes(finish), `finish_reason ${finish}`);
  expect(usage && usage.completion_tokens > 0, 'no usage chunk with include_usage');
  // The same text as without streaming.
  const whole = await client.chat.completions.create({ model, messages: user, max_tokens: 24, temperature: 0 });
  expect(whole.choices[0].message.content === text, 'streamed text differs from the non-streaming answer');
}

async function badKey() {
  const other = new OpenAI({ baseURL, apiKey: 'sk-not-a-key', maxRetries: 0, timeout: 20000 });
  try {
    await other.chat.completions.create({ model, messages: user, max_tokens: 4 });
  } catch (e) {
    expect(e instanceof OpenAI.AuthenticationError, `expected AuthenticationError, got ${e.constructor.name}`);
    expect(e.status === 401, `status ${e.status}`);
    return;
  }
  throw new CheckError('a wrong key was served');
}

// --- with --all: the tool and structured-output slices ----------------------------
const weatherTool = {
  type: 'function',
  function: {
    name: 'get_weather',
    description: 'The weather in a city',
    parameters: {
      type: 'object',
      properties: { city: { type: 'string', maxLength: 12 }, days: { type: 'integer', minimum: 1, maximum: 7 } },
      required: ['city'],
    },
  },
};

async function toolCall() {
  const r = await client.chat.completions.create({
    model, messages: [{ role: 'user', content: 'What is the weather in Paris?' }], max_tokens: 96, seed: 1,
    tools: [weatherTool], tool_choice: { type: 'function', function: { name: 'get_weather' } },
  });
  const c = r.choices[0];
  expect(c.finish_reason === 'tool_calls', `finish_reason ${c.finish_reason}`);
  const calls = c.message.tool_calls;
  expect(Array.isArray(calls) && calls.length >= 1, 'no tool_calls');
  expect(calls[0].type === 'function' && calls[0].function.name === 'get_weather', 'wrong function');
  expect(typeof calls[0].id === 'string' && calls[0].id.length > 0, 'tool call id missing');
  const args = JSON.parse(calls[0].function.arguments);
  expect(typeof args.city === 'string', `arguments ${calls[0].function.arguments}`);
  // The tool's result goes back as a role "tool" message.
  const next = await client.chat.completions.create({
    model, max_tokens: 16, tools: [weatherTool],
    messages: [{ role: 'user', content: 'What is the weather in Paris?' }, c.message,
      { role: 'tool', tool_call_id: calls[0].id, content: '{"temperature": 21}' }],
  });
  expect(next.choices.length === 1, 'no answer after the tool result');
}

async function streamingToolCall() {
  const stream = await client.chat.completions.create({
    model, messages: [{ role: 'user', content: 'Weather in Oslo?' }], max_tokens: 96, seed: 1, stream: true,
    tools: [weatherTool], tool_choice: 'required',
  });
  let name = '', args = '', finish = null;
  for await (const chunk of stream) {
    for (const ch of chunk.choices) {
      for (const tc of ch.delta.tool_calls ?? []) {
        if (tc.function?.name) name += tc.function.name;
        if (tc.function?.arguments) args += tc.function.arguments;
      }
      if (ch.finish_reason) finish = ch.finish_reason;
    }
  }
  expect(finish === 'tool_calls', `finish_reason ${finish}`);
  expect(name === 'get_weather', `streamed name ${name}`);
  expect(typeof JSON.parse(args).city === 'string', `streamed arguments ${args}`);
}

async function structuredOutput() {
  const schema = {
    type: 'object',
    properties: {
      name: { type: 'string', maxLength: 12 },
      age: { type: 'integer', minimum: 0, maximum: 150 },
      pets: { type: 'array', maxItems: 3, items: { type: 'string', enum: ['dog', 'cat', 'fish'] } },
    },
    required: ['name', 'age', 'pets'],
    additionalProperties: false,
  };
  const r = await client.chat.completions.create({
    model, messages: [{ role: 'user', content: 'Describe a person as JSON.' }], max_tokens: 128, seed: 1,
    response_format: { type: 'json_schema', json_schema: { name: 'person', strict: true, schema } },
  });
  const c = r.choices[0];
  expect(c.finish_reason === 'stop', `finish_reason ${c.finish_reason} (output cut short?)`);
  const v = JSON.parse(c.message.content);
  expect(typeof v.name === 'string', 'name');
  expect(Number.isInteger(v.age) && v.age >= 0 && v.age <= 150, `age ${v.age}`);
  expect(Array.isArray(v.pets) && v.pets.every((p) => ['dog', 'cat', 'fish'].includes(p)), 'pets');
  expect(Object.keys(v).every((k) => k in schema.properties), 'an extra property');
  const o = await client.chat.completions.create({
    model, messages: [{ role: 'user', content: 'Any JSON object.' }], max_tokens: 128, seed: 1,
    response_format: { type: 'json_object' },
  });
  // Any object may hold strings a random-weight model never closes: a reply
  // cut by max_tokens must still be the start of an object.
  const oc = o.choices[0];
  if (oc.finish_reason === 'length') {
    expect(/^\s*\{/.test(oc.message.content), 'json_object cut short does not start an object');
  } else {
    const obj = JSON.parse(oc.message.content);
    expect(obj !== null && typeof obj === 'object' && !Array.isArray(obj), 'json_object gave no object');
  }
}

const checks = [['chat', chat], ['streaming chat', streamingChat], ['bad key', badKey]];
if (all) {
  checks.push(['tool call', toolCall], ['streaming tool call', streamingToolCall],
    ['structured output', structuredOutput]);
}
for (const [name, fn] of checks) {
  try {
    await fn();
    console.log(`ok - ${name}`);
  } catch (e) {
    console.log(`not ok - ${name}: ${e instanceof CheckError ? e.message : `${e.constructor.name}: ${e.message}`}`);
    process.exit(1);
  }
}
console.log(`all ${checks.length} checks passed${all ? '' : ' (tools and structured output: --all)'}`);
