//===- ServeCommand.cpp - kiln serve: an OpenAI-compatible HTTP server ----===//
//
// cpp-httplib (Debian's libcpp-httplib-dev) and nlohmann-json over the
// MLIR-free runtime. It binds first (and prints the address), answers
// /health with 503 while the artifact loads, then serves from one Engine
// (continuous batching over --parallel slots). Routes and their errors are
// documented in docs/serving.md.
//
//===----------------------------------------------------------------------===//
#include "../Args.h"
#include "../Driver.h"
#include "Engine.h"
#include "Protocol.h"

#include "kiln/Support/Error.h"

#include <httplib.h>

#include <atomic>
#include <cctype>
#include <chrono>
#include <thread>
#include <csignal>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <iostream>
#include <map>
#include <pthread.h>
#include <random>

namespace kiln {

namespace {

using json = nlohmann::json;
using serve::ClientError;
using serve::Clock;

const char *kServeHelp =
    "usage: kiln serve ARTIFACT_DIR [--host 127.0.0.1] [--port 8080|0] [--parallel 4] [--max-queue 64]\n"
    "                  [--threads N] [--alias NAME] [--max-body-bytes 1048576] [--kernels NAME]\n"
    "                  [--chat-template chatml|plain]\n"
    "OpenAI-compatible completions over HTTP with continuous batching: --parallel sequences decode\n"
    "together (compile the artifact with --decode-batch for batched steps), --max-queue more wait\n"
    "(beyond that: 503). Binds to loopback unless --host says otherwise; --port 0 picks a free port.\n"
    "Prints the address, then serves until SIGINT or SIGTERM. Routes: GET /health, /v1/models,\n"
    "/metrics, /v2/health/ready, /v2/models/NAME; POST /v1/completions, /v1/chat/completions (501\n"
    "without --chat-template), /tokenize, /detokenize (docs/serving.md).\n";

/// Server-wide state shared by the routes.
struct State {
  std::string modelId;
  std::string chatTemplate; ///< "" (chat answers 501), "chatml" or "plain"
  std::unique_ptr<rt::Artifact> artifact;
  std::unique_ptr<serve::Engine> engine;
  std::atomic<bool> ready{false};
  std::atomic<uint64_t> nextId{1};
  std::mutex statusMutex;
  std::map<int, uint64_t> statusCounts; ///< HTTP responses by status
  std::mt19937_64 seeds{std::random_device{}()};
  std::mutex seedMutex;
};

void sendJson(httplib::Response &res, int status, const json &body) {
  res.status = status;
  res.set_content(serve::dump(body), "application/json");
}

void sendError(httplib::Response &res, int status, const std::string &type, const std::string &message,
               const json &extra = json::object()) {
  sendJson(res, status, serve::errorBody(status, type, message, extra));
}

/// Runs a route, turning ClientError (and anything else) into the error shape.
template <typename Fn> void guarded(httplib::Response &res, Fn body) {
  try {
    body();
  } catch (const ClientError &e) {
    sendError(res, e.status, e.type, e.what(), e.extra);
  } catch (const std::exception &e) {
    sendError(res, 500, "server_error", e.what());
  }
}

void requireReady(State &s) {
  if (!s.ready.load())
    throw ClientError(503, "unavailable_error", "Loading model");
}

json timings(const serve::Request &r, size_t promptTokens) {
  auto ms = [](Clock::time_point a, Clock::time_point b) {
    return a.time_since_epoch().count() && b.time_since_epoch().count()
               ? std::chrono::duration<double, std::milli>(b - a).count()
               : 0.0;
  };
  double promptMs = ms(r.started, r.firstToken), predictedMs = ms(r.firstToken, r.finished);
  return {{"queue_ms", ms(r.queued, r.started)},
          {"prompt_n", promptTokens},
          {"prompt_ms", promptMs},
          {"prompt_per_second", promptMs > 0 ? 1000.0 * double(promptTokens) / promptMs : 0.0},
          {"predicted_n", r.generated},
          {"predicted_ms", predictedMs},
          {"predicted_per_second", predictedMs > 0 && r.generated > 1 ? 1000.0 * double(r.generated - 1) / predictedMs
                                                                       : 0.0}};
}

json usage(const serve::Request &r, size_t promptTokens) {
  return {{"prompt_tokens", promptTokens},
          {"completion_tokens", r.generated},
          {"total_tokens", int64_t(promptTokens) + r.generated}};
}

/// A choice of /v1/completions, or of /v1/chat/completions (`message`, or `delta` in a stream).
json choice(const std::string &text, const json &finish, int chat = 0) {
  if (chat == 1)
    return {{"index", 0}, {"message", {{"role", "assistant"}, {"content", text}}}, {"logprobs", nullptr},
            {"finish_reason", finish}};
  if (chat == 2)
    return {{"index", 0}, {"delta", text.empty() ? json::object() : json{{"content", text}}}, {"logprobs", nullptr},
            {"finish_reason", finish}};
  return {{"text", text}, {"index", 0}, {"logprobs", nullptr}, {"finish_reason", finish}};
}

/// The prompt a chat template makes of `messages` (and the stop string ending the reply).
std::pair<std::string, std::string> renderChat(const std::string &tmpl, const json &messages) {
  if (!messages.is_array() || messages.empty())
    throw ClientError(400, "invalid_request_error", "'messages' must be a non-empty array of {role, content}");
  std::string prompt;
  for (const auto &m : messages) {
    if (!m.is_object() || !m.contains("role") || !m["role"].is_string() || !m.contains("content") ||
        !m["content"].is_string())
      throw ClientError(400, "invalid_request_error", "each message must be {\"role\": string, \"content\": string}");
    std::string role = m["role"].get<std::string>(), content = m["content"].get<std::string>();
    if (role != "system" && role != "user" && role != "assistant")
      throw ClientError(400, "invalid_request_error", "a message's role must be system, user or assistant, got '" +
                                                          role + "'");
    if (tmpl == "chatml") {
      prompt += "<|im_start|>" + role + "\n" + content + "<|im_end|>\n";
    } else {
      role[0] = char(std::toupper(static_cast<unsigned char>(role[0])));
      prompt += role + ": " + content + "\n";
    }
  }
  if (tmpl == "chatml")
    return {prompt + "<|im_start|>assistant\n", "<|im_end|>"};
  return {prompt + "Assistant:", "\nUser:"};
}

/// /v1/completions, or with `chat` /v1/chat/completions (the messages through the template).
void completions(State &s, const httplib::Request &req, httplib::Response &res, bool chat) {
  if (chat && s.chatTemplate.empty())
    throw ClientError(501, "not_supported_error",
                      "this model has no chat template (a base GPT-2): use /v1/completions with a plain prompt, or "
                      "start kiln serve with --chat-template chatml|plain");
  requireReady(s);
  uint64_t seed;
  {
    std::lock_guard<std::mutex> lock(s.seedMutex);
    seed = s.seeds();
  }
  json body = serve::parseBody(req.body);
  std::string chatStop;
  if (chat) {
    if (body.contains("prompt"))
      throw ClientError(400, "invalid_request_error", "chat completions take 'messages', not 'prompt'");
    auto [prompt, stop] = renderChat(s.chatTemplate, body.contains("messages") ? body["messages"] : json());
    body["prompt"] = prompt;
    body.erase("echo");
    if (body.contains("max_completion_tokens") && !body.contains("max_tokens"))
      body["max_tokens"] = body["max_completion_tokens"];
    chatStop = stop;
  }
  serve::CompletionRequest c = serve::parseCompletion(body, *s.artifact, s.artifact->tokenizer(), seed, s.modelId);
  if (chat)
    c.params.stop.push_back(chatStop);
  auto r = std::make_shared<serve::Request>();
  r->prompt = c.prompt;
  r->params = c.params;
  if (!s.engine->submit(r)) {
    res.set_header("Retry-After", "1");
    throw ClientError(503, "unavailable_error", "the server is busy: every slot is generating and the queue is full "
                                                "(--max-queue); retry later");
  }
  std::string id = (chat ? "chatcmpl-" : "cmpl-") + std::to_string(s.nextId++);
  int64_t created = int64_t(std::time(nullptr));
  const size_t promptTokens = c.prompt.size();
  std::string model = c.params.adapter == "none" ? s.modelId : c.params.adapter;
  std::string object = chat ? (c.stream ? "chat.completion.chunk" : "chat.completion") : "text_completion";
  auto envelope = [model, id, created, object](const json &choices) {
    return json{{"id", id}, {"object", object}, {"created", created}, {"model", model}, {"choices", choices}};
  };
  const int kind = chat ? (c.stream ? 2 : 1) : 0;
  if (!c.stream) {
    std::unique_lock<std::mutex> lock(r->mutex);
    r->changed.wait(lock, [&] { return r->done; });
    if (r->finishReason == "error")
      throw ClientError(500, "server_error", r->error);
    if (r->finishReason == "cancelled")
      throw ClientError(503, "unavailable_error", "the server is shutting down");
    json out = envelope(json::array({choice((c.echo ? c.promptText : "") + r->text, r->finishReason, kind)}));
    out["usage"] = usage(*r, promptTokens);
    out["timings"] = timings(*r, promptTokens);
    sendJson(res, 200, out);
    return;
  }
  // Server-sent events: one chunk per published piece, then the finish, then [DONE].
  struct Stream {
    size_t sent = 0;
    bool echoed = false, finished = false;
  };
  auto st = std::make_shared<Stream>();
  st->echoed = !c.echo && !chat;
  std::string promptText = c.promptText;
  bool includeUsage = c.includeUsage;
  res.set_header("Cache-Control", "no-cache");
  res.set_chunked_content_provider(
      "text/event-stream",
      [r, st, envelope, promptText, includeUsage, promptTokens, kind](size_t, httplib::DataSink &sink) {
        auto event = [&](const json &j) {
          std::string line = "data: " + serve::dump(j) + "\n\n";
          return sink.write(line.data(), line.size());
        };
        if (!st->echoed) {
          st->echoed = true;
          // The echoed prompt, or a chat stream's first delta: the role.
          json first = envelope(json::array({choice(kind ? "" : promptText, nullptr, kind)}));
          if (kind)
            first["choices"][0]["delta"] = {{"role", "assistant"}};
          if (!event(first)) {
            r->cancelled = true;
            return false;
          }
        }
        std::string piece;
        bool done = false;
        {
          std::unique_lock<std::mutex> lock(r->mutex);
          // Wake every second while nothing comes (queued, or a long prefill elsewhere): a
          // comment line finds out whether the client is still there.
          while (r->text.size() == st->sent && !r->done) {
            if (!r->changed.wait_for(lock, std::chrono::seconds(1), [&] { return r->text.size() > st->sent || r->done; })) {
              lock.unlock();
              static const char ping[] = ": ping\n\n";
              if (!sink.write(ping, sizeof ping - 1)) {
                r->cancelled = true;
                return false;
              }
              lock.lock();
            }
          }
          piece = r->text.substr(st->sent);
          st->sent = r->text.size();
          done = r->done;
        }
        if (!piece.empty() && !event(envelope(json::array({choice(piece, nullptr, kind)})))) {
          r->cancelled = true; // the client went away: its generation stops at the next step
          return false;
        }
        if (!done)
          return true;
        if (r->finishReason == "error" || r->finishReason == "cancelled") {
          event(serve::errorBody(500, "server_error",
                                 r->finishReason == "error" ? r->error : "the server is shutting down"));
        } else {
          json last = envelope(json::array({choice("", r->finishReason, kind)}));
          last["timings"] = timings(*r, promptTokens);
          event(last);
          if (includeUsage) {
            json u = envelope(json::array());
            u["usage"] = usage(*r, promptTokens);
            event(u);
          }
        }
        static const char doneLine[] = "data: [DONE]\n\n";
        sink.write(doneLine, sizeof doneLine - 1);
        st->finished = true;
        sink.done();
        return true;
      },
      [r, st](bool success) {
        if (!success || !st->finished)
          r->cancelled = true;
      });
}

std::string metrics(State &s) {
  std::ostringstream os;
  auto metric = [&](const char *name, const char *type, const char *help, double value) {
    os << "# HELP kiln_" << name << " " << help << "\n# TYPE kiln_" << name << " " << type << "\nkiln_" << name << " "
       << value << "\n";
  };
  serve::EngineStats e = s.engine ? s.engine->stats() : serve::EngineStats{};
  metric("requests_total", "counter", "Completions finished (any finish reason).", double(e.requests));
  metric("prompt_tokens_total", "counter", "Prompt tokens prefilled.", double(e.promptTokens));
  metric("prompt_seconds_total", "counter", "Seconds spent prefilling.", e.promptSeconds);
  metric("tokens_predicted_total", "counter", "Tokens generated.", double(e.generatedTokens));
  metric("decode_seconds_total", "counter", "Seconds spent in decode steps.", e.decodeSeconds);
  metric("decode_steps_total", "counter", "Decode steps run (each over every generating slot).", double(e.decodeSteps));
  metric("decode_rows_total", "counter", "Sequences stepped, summed over decode steps.", double(e.decodeRows));
  metric("busy_slots_per_decode", "gauge", "Mean slots per decode step so far.",
         e.decodeSteps ? double(e.decodeRows) / double(e.decodeSteps) : 0.0);
  metric("requests_processing", "gauge", "Requests holding a slot.", double(e.busySlots));
  metric("requests_deferred", "gauge", "Requests waiting for a slot.", double(e.queued));
  metric("slots", "gauge", "Slots (--parallel).", double(e.slots));
  os << "# HELP kiln_http_responses_total HTTP responses by status.\n# TYPE kiln_http_responses_total counter\n";
  std::lock_guard<std::mutex> lock(s.statusMutex);
  for (const auto &[status, count] : s.statusCounts)
    os << "kiln_http_responses_total{code=\"" << status << "\"} " << count << "\n";
  return os.str();
}

json modelEntry(State &s) {
  json meta = json::object();
  if (s.artifact)
    meta = {{"n_ctx", s.artifact->contextLength()},
            {"n_vocab", s.artifact->vocabSize()},
            {"target", s.artifact->target()},
            {"kernels", s.artifact->kernels()},
            {"decode_batch", s.artifact->decodeBatchSizes()}};
  return {{"id", s.modelId}, {"object", "model"}, {"created", 0}, {"owned_by", "kiln"}, {"meta", meta}};
}

void routes(httplib::Server &svr, State &s) {
  std::map<std::string, std::set<std::string>> allowed;
  auto get = [&](const std::string &path, httplib::Server::Handler h) {
    svr.Get(path, [h](const httplib::Request &q, httplib::Response &r) { guarded(r, [&] { h(q, r); }); });
    allowed[path].insert("GET");
  };
  auto post = [&](const std::string &path, httplib::Server::Handler h) {
    svr.Post(path, [h](const httplib::Request &q, httplib::Response &r) { guarded(r, [&] { h(q, r); }); });
    allowed[path].insert("POST");
  };
  get("/health", [&](const httplib::Request &, httplib::Response &res) {
    if (!s.ready.load())
      return sendError(res, 503, "unavailable_error", "Loading model");
    sendJson(res, 200, {{"status", "ok"}});
  });
  get("/v1/models", [&](const httplib::Request &, httplib::Response &res) {
    json data = json::array({modelEntry(s)});
    if (s.artifact) // each switchable adapter is a model of its own, as vLLM lists LoRA adapters
      for (const auto &a : s.artifact->adapters())
        data.push_back({{"id", a}, {"object", "model"}, {"created", 0}, {"owned_by", "kiln"}, {"parent", s.modelId}});
    sendJson(res, 200, {{"object", "list"}, {"data", data}});
  });
  post("/v1/completions", [&](const httplib::Request &q, httplib::Response &res) { completions(s, q, res, false); });
  post("/v1/chat/completions", [&](const httplib::Request &q, httplib::Response &res) { completions(s, q, res, true); });
  post("/tokenize", [&](const httplib::Request &q, httplib::Response &res) {
    requireReady(s);
    json body = serve::parseBody(q.body);
    auto content = body.find("content");
    if (content == body.end() || !content->is_string())
      throw ClientError(400, "invalid_request_error", "'content' must be a string");
    std::vector<int32_t> ids = s.artifact->tokenizer().encode(content->get<std::string>());
    bool pieces = body.contains("with_pieces") && body["with_pieces"].is_boolean() && body["with_pieces"].get<bool>();
    json tokens = json::array();
    for (int32_t id : ids) {
      if (!pieces) {
        tokens.push_back(id);
        continue;
      }
      const std::string &b = s.artifact->tokenizer().tokenBytes(id);
      json piece = json::array(); // bytes: a piece can end inside a UTF-8 character
      for (unsigned char ch : b)
        piece.push_back(int(ch));
      tokens.push_back({{"id", id}, {"piece", piece}});
    }
    sendJson(res, 200, {{"tokens", tokens}});
  });
  post("/detokenize", [&](const httplib::Request &q, httplib::Response &res) {
    requireReady(s);
    json body = serve::parseBody(q.body);
    std::vector<int32_t> ids = serve::tokenIds(body.contains("tokens") ? body["tokens"] : json(), "tokens",
                                               s.artifact->vocabSize());
    sendJson(res, 200, {{"content", s.artifact->tokenizer().decode(ids)}});
  });
  get("/metrics", [&](const httplib::Request &, httplib::Response &res) {
    res.set_content(metrics(s), "text/plain; version=0.0.4");
  });
  // KServe's Open Inference Protocol (V2): health and model metadata.
  get("/v2/health/live", [&](const httplib::Request &, httplib::Response &res) { sendJson(res, 200, {{"live", true}}); });
  get("/v2/health/ready", [&](const httplib::Request &, httplib::Response &res) {
    sendJson(res, s.ready.load() ? 200 : 503, {{"ready", s.ready.load()}});
  });
  auto v2model = [&](const httplib::Request &q, httplib::Response &res, bool readiness) {
    if (q.matches[1] != s.modelId)
      throw ClientError(404, "not_found_error", "no model named '" + std::string(q.matches[1]) + "' (this server has '" +
                                                    s.modelId + "')");
    if (readiness)
      return sendJson(res, s.ready.load() ? 200 : 503, {{"name", s.modelId}, {"ready", s.ready.load()}});
    sendJson(res, 200,
             {{"name", s.modelId},
              {"versions", json::array({"1"})},
              {"platform", "kiln"},
              {"inputs", json::array({{{"name", "text_input"}, {"datatype", "BYTES"}, {"shape", {1}}}})},
              {"outputs", json::array({{{"name", "text_output"}, {"datatype", "BYTES"}, {"shape", {1}}}})}});
  };
  get(R"(/v2/models/([^/]+))", [v2model](const httplib::Request &q, httplib::Response &r) { v2model(q, r, false); });
  get(R"(/v2/models/([^/]+)/ready)", [v2model](const httplib::Request &q, httplib::Response &r) { v2model(q, r, true); });

  // A known route with another method: 405 with Allow.
  for (const auto &[path, methods] : allowed) {
    std::string allow;
    for (const auto &m : methods)
      allow += (allow.empty() ? "" : ", ") + m;
    auto refuse = [allow](const httplib::Request &q, httplib::Response &res) {
      res.set_header("Allow", allow);
      sendError(res, 405, "invalid_request_error", q.method + " " + q.path + " is not allowed (use " + allow + ")");
    };
    if (!methods.count("GET"))
      svr.Get(path, refuse);
    if (!methods.count("POST"))
      svr.Post(path, refuse);
    svr.Put(path, refuse);
    svr.Patch(path, refuse);
    svr.Delete(path, refuse);
  }
  // httplib's own refusals (no route, body too large, bad request line) in the same shape.
  svr.set_error_handler([](const httplib::Request &q, httplib::Response &res) {
    if (!res.body.empty())
      return;
    if (res.status == 404)
      sendError(res, 404, "not_found_error", "no route " + q.method + " " + q.path);
    else if (res.status == 413)
      sendError(res, 413, "invalid_request_error", "the request body is too large (--max-body-bytes)");
    else
      sendError(res, res.status, res.status >= 500 ? "server_error" : "invalid_request_error",
                "HTTP " + std::to_string(res.status));
  });
  svr.set_exception_handler([](const httplib::Request &, httplib::Response &res, std::exception_ptr ep) {
    std::string what = "internal error";
    try {
      std::rethrow_exception(ep);
    } catch (const std::exception &e) {
      what = e.what();
    } catch (...) {
    }
    sendError(res, 500, "server_error", what);
  });
  svr.set_logger([&s](const httplib::Request &, const httplib::Response &res) {
    std::lock_guard<std::mutex> lock(s.statusMutex);
    ++s.statusCounts[res.status];
  });
}

} // namespace

int serveCommand(int argc, char **argv) {
  Args args("serve",
            {"--host", "--port", "--parallel", "--max-queue", "--threads", "--alias", "--max-body-bytes", "--kernels",
             "--chat-template"},
            {"--help"});
  args.parse(argc, argv, 2);
  if (args.has("--help")) {
    std::cout << kServeHelp;
    return 0;
  }
  std::string dir = args.onePositional("ARTIFACT_DIR");
  std::string host = args.get("--host", "127.0.0.1");
  int64_t port = args.getInt("--port", 8080), parallel = args.getInt("--parallel", 4),
          maxQueue = args.getInt("--max-queue", 64), threads = args.getInt("--threads", 0),
          maxBody = args.getInt("--max-body-bytes", 1 << 20);
  if (port < 0 || port > 65535)
    args.error("--port must be in 0..65535 (0: any free port)");
  if (parallel < 1 || parallel > 256)
    args.error("--parallel must be in 1..256");
  if (maxQueue < 0 || maxQueue > 100000)
    args.error("--max-queue must be in 0..100000");
  if (threads < 0)
    args.error("--threads must be >= 0");
  if (maxBody < 1024)
    args.error("--max-body-bytes must be at least 1024");

  // SIGINT / SIGTERM are taken by one thread (sigwait): it stops the engine, then the server.
  sigset_t stopSignals;
  sigemptyset(&stopSignals);
  sigaddset(&stopSignals, SIGINT);
  sigaddset(&stopSignals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stopSignals, nullptr);
  std::signal(SIGPIPE, SIG_IGN);

  State s;
  s.chatTemplate = args.get("--chat-template", "");
  if (!s.chatTemplate.empty() && s.chatTemplate != "chatml" && s.chatTemplate != "plain")
    args.error("--chat-template must be chatml or plain, got '" + s.chatTemplate + "'");
  s.modelId = args.has("--alias") ? args.get("--alias") : std::filesystem::path(dir).lexically_normal().filename().string();
  if (s.modelId.empty() || s.modelId == ".")
    s.modelId = std::filesystem::absolute(dir).lexically_normal().parent_path().filename().string();
  httplib::Server svr;
  // Enough HTTP threads that a full queue is refused by us (503), not left waiting in httplib's.
  size_t httpThreads = size_t(parallel + std::min<int64_t>(maxQueue, 1024) + 8);
  svr.new_task_queue = [httpThreads] { return new httplib::ThreadPool(httpThreads); };
  svr.set_payload_max_length(size_t(maxBody));
  svr.set_read_timeout(30, 0);
  routes(svr, s);
  int bound = port == 0 ? svr.bind_to_any_port(host) : (svr.bind_to_port(host, int(port)) ? int(port) : -1);
  if (bound < 0)
    throw Error("kiln serve: cannot listen on " + host + ":" + std::to_string(port) + " (in use, or not an address here)");
  std::string shownHost = host.find(':') != std::string::npos ? "[" + host + "]" : host;
  std::printf("kiln serve: listening on http://%s:%d (loading %s)\n", shownHost.c_str(), bound, dir.c_str());
  std::fflush(stdout);
  std::atomic<bool> listenerDone{false};
  std::thread listener([&] {
    svr.listen_after_bind();
    listenerDone = true;
  });

  std::mutex engineMutex;
  std::thread stopper([&] {
    int sig = 0;
    sigwait(&stopSignals, &sig);
    {
      std::lock_guard<std::mutex> lock(engineMutex);
      if (s.engine)
        s.engine->stop(); // in-flight requests end (cancelled), so their handlers return
    }
    // cpp-httplib's stop() does nothing until listen_after_bind has begun: a load error
    // right after start (a missing artifact) could otherwise leave the listener running
    // for ever (seen once in CI, e2e.serve hung).
    while (!svr.is_running() && !listenerDone)
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    svr.stop();
  });

  std::string loadError;
  try {
    rt::Artifact::Options options;
    options.kernels = args.get("--kernels", "auto");
    auto artifact = rt::Artifact::open(dir, options);
    artifact->tokenizer();
    std::lock_guard<std::mutex> lock(engineMutex);
    s.artifact = std::move(artifact);
    s.engine = std::make_unique<serve::Engine>(*s.artifact, int(parallel), int(maxQueue), int(threads));
    s.ready = true;
    std::vector<int64_t> sizes = s.artifact->decodeBatchSizes();
    std::string list;
    for (int64_t b : sizes)
      list += (list.empty() ? "" : ",") + std::to_string(b);
    std::printf("kiln serve: ready: %s (%s, %lld slots, decode batches %s)\n", s.modelId.c_str(),
                s.artifact->kernels().c_str(), (long long)parallel, list.c_str());
    std::fflush(stdout);
  } catch (const std::exception &e) {
    loadError = e.what();
    pthread_kill(stopper.native_handle(), SIGTERM);
  }
  listener.join();
  stopper.join();
  {
    std::lock_guard<std::mutex> lock(engineMutex);
    s.engine.reset();
  }
  if (!loadError.empty())
    throw Error(loadError);
  std::printf("kiln serve: stopped\n");
  return 0;
}

} // namespace kiln
