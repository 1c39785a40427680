// An OpenAI-compatible chat server over one small GGUF model, for trying and testing autoarch's
// LLM path without an account or a GPU. Started and stopped by ../local-llm.sh.
//
// Endpoints: GET /v1/models, POST /v1/chat/completions (non-streaming). Honoured request fields:
// messages (system/user/assistant), max_tokens, temperature, top_p, seed, stop, response_format
// ({"type":"json_schema","json_schema":{"schema":S}} or {"type":"json_object"[, "schema":S]}) and a
// GBNF `grammar` string. Requests are answered one at a time (one context sequence).
//
// Environment: MODEL (path to the .gguf, required), MODEL_ID (the id to answer to), HOST, PORT,
// THREADS, CONTEXT (tokens); ../local-llm.sh sets them.

import http from "node:http";
import { getLlama, LlamaChat, LlamaGrammar } from "node-llama-cpp";

const modelPath = process.env.MODEL;
const modelId = process.env.MODEL_ID || "smollm2";
const host = process.env.HOST || "127.0.0.1";
const port = Number(process.env.PORT || 8089);
const threads = Number(process.env.THREADS || 1);
const contextSize = Number(process.env.CONTEXT || 8192);
const maxBody = 4 * 1024 * 1024;

if (!modelPath) {
  console.error("server.mjs: MODEL (the .gguf file) is not set");
  process.exit(2);
}

const llama = await getLlama({ gpu: false, build: "never", maxThreads: threads });
const model = await llama.loadModel({ modelPath });
const context = await model.createContext({ contextSize, threads });
const chat = new LlamaChat({ contextSequence: context.getSequence() });
const jsonGrammar = await llama.getGrammarFor("json");

class RequestError extends Error {
  constructor(status, message, param) {
    super(message);
    this.status = status;
    this.param = param;
  }
}

// One request at a time: the chat owns a single sequence.
let queue = Promise.resolve();
function serialized(job) {
  const run = queue.then(job, job);
  queue = run.catch(() => {});
  return run;
}

function history(messages) {
  if (!Array.isArray(messages) || messages.length === 0) {
    throw new RequestError(400, "`messages` must be a non-empty array", "messages");
  }
  const items = messages.map((m, i) => {
    const text = typeof m?.content === "string"
      ? m.content
      : Array.isArray(m?.content)
        ? m.content.filter((p) => p?.type === "text").map((p) => p.text).join("")
        : null;
    if (text === null) throw new RequestError(400, `messages[${i}].content must be text`, "messages");
    switch (m.role) {
      case "system":
      case "developer":
        return { type: "system", text };
      case "user":
        return { type: "user", text };
      case "assistant":
        return { type: "model", response: [text] };
      default:
        throw new RequestError(400, `messages[${i}].role "${m.role}" is not supported`, "messages");
    }
  });
  items.push({ type: "model", response: [] });
  return items;
}

async function grammarFor(body) {
  if (typeof body.grammar === "string" && body.grammar.trim() !== "") {
    try {
      return new LlamaGrammar(llama, { grammar: body.grammar });
    } catch (e) {
      throw new RequestError(400, `grammar: ${e.message}`, "grammar");
    }
  }
  const format = body.response_format;
  if (format == null || format.type === "text") return undefined;
  const schema = format.type === "json_schema" ? format.json_schema?.schema : format.schema;
  if (format.type !== "json_schema" && format.type !== "json_object") {
    throw new RequestError(400, `response_format type "${format.type}" is not supported`, "response_format");
  }
  if (schema == null) {
    if (format.type === "json_schema") {
      throw new RequestError(400, "response_format json_schema needs json_schema.schema", "response_format");
    }
    return jsonGrammar;
  }
  try {
    return await llama.createGrammarForJsonSchema(schema);
  } catch (e) {
    throw new RequestError(400, `response_format schema: ${e.message}`, "response_format");
  }
}

function tokenCount(text) {
  return text === "" ? 0 : model.tokenize(text).length;
}

async function complete(body, signal) {
  if (signal.aborted) throw new RequestError(499, "the client went away");
  const items = history(body.messages);
  const grammar = await grammarFor(body);
  const stop = body.stop == null ? [] : Array.isArray(body.stop) ? body.stop : [body.stop];
  const options = {
    maxTokens: Number.isInteger(body.max_tokens) && body.max_tokens > 0 ? body.max_tokens : 512,
    temperature: typeof body.temperature === "number" ? body.temperature : 0.7,
    topP: typeof body.top_p === "number" ? body.top_p : undefined,
    seed: Number.isInteger(body.seed) ? body.seed : undefined,
    customStopTriggers: stop.filter((s) => typeof s === "string" && s !== ""),
    grammar,
    // A client that gives up (a timeout on its side) stops the generation: no tokens are spent on
    // an answer nobody reads, and the next request is not kept waiting.
    signal,
    stopOnAbortSignal: true,
  };
  const started = Date.now();
  const answer = await chat.generateResponse(items, options);
  const text = answer.response;
  const promptTokens = body.messages.reduce((n, m) => n + tokenCount(String(m.content ?? "")), 0);
  const completionTokens = tokenCount(text);
  const how = signal.aborted ? " (client gone, stopped)" : "";
  console.log(
    `${new Date().toISOString()} completion ${promptTokens}+${completionTokens} tokens in ${Date.now() - started} ms${how}`,
  );
  return {
    id: `chatcmpl-${started}-${Math.floor(Math.random() * 1e9)}`,
    object: "chat.completion",
    created: Math.floor(started / 1000),
    model: modelId,
    choices: [{
      index: 0,
      message: { role: "assistant", content: text },
      finish_reason: answer.metadata.stopReason === "maxTokens" ? "length" : "stop",
    }],
    usage: {
      prompt_tokens: promptTokens,
      completion_tokens: completionTokens,
      total_tokens: promptTokens + completionTokens,
    },
  };
}

function send(res, status, value) {
  const payload = JSON.stringify(value);
  res.writeHead(status, { "content-type": "application/json", "content-length": Buffer.byteLength(payload) });
  res.end(payload);
}

function fail(res, status, message, param) {
  const type = status >= 500 ? "server_error" : "invalid_request_error";
  send(res, status, { error: { message, type, param: param ?? null, code: null } });
}

function readBody(req) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    let size = 0;
    req.on("data", (c) => {
      size += c.length;
      if (size > maxBody) {
        reject(new RequestError(413, "request body too large"));
        req.destroy();
      } else {
        chunks.push(c);
      }
    });
    req.on("end", () => resolve(Buffer.concat(chunks).toString("utf8")));
    req.on("error", reject);
  });
}

const server = http.createServer(async (req, res) => {
  const path = new URL(req.url, "http://localhost").pathname.replace(/\/+$/, "");
  try {
    if (req.method === "GET" && path === "/v1/models") {
      send(res, 200, { object: "list", data: [{ id: modelId, object: "model", created: 0, owned_by: "local" }] });
    } else if (path === "/v1/chat/completions") {
      if (req.method !== "POST") throw new RequestError(405, "use POST");
      let body;
      try {
        body = JSON.parse(await readBody(req));
      } catch (e) {
        throw e instanceof RequestError ? e : new RequestError(400, `the body is not JSON: ${e.message}`);
      }
      if (body === null || typeof body !== "object" || Array.isArray(body)) {
        throw new RequestError(400, "the body must be a JSON object");
      }
      if (body.stream) throw new RequestError(400, "stream is not supported", "stream");
      if (body.model != null && body.model !== modelId) {
        throw new RequestError(404, `model "${body.model}" does not exist; this server has "${modelId}"`, "model");
      }
      const gone = new AbortController();
      const onClose = () => gone.abort();
      if (req.socket.destroyed) return;
      req.socket.once("close", onClose);
      try {
        const answer = await serialized(() => complete(body, gone.signal));
        if (!gone.signal.aborted) send(res, 200, answer);
      } finally {
        req.socket.off("close", onClose);
      }
    } else {
      throw new RequestError(404, `no route ${req.method} ${path}`);
    }
  } catch (e) {
    if (res.destroyed) {
      // Nobody to answer.
    } else if (e instanceof RequestError) {
      fail(res, e.status, e.message, e.param);
    } else {
      console.error(e);
      fail(res, 500, String(e?.message ?? e));
    }
  }
});

server.listen(port, host, () => {
  console.log(`serving ${modelId} (${modelPath}) on http://${host}:${port}/v1 with ${threads} thread(s)`);
});

for (const signal of ["SIGINT", "SIGTERM"]) {
  process.on(signal, () => {
    server.close();
    process.exit(0);
  });
}
