"""A local HTTP server that answers like the OpenAI and Anthropic APIs, with fixed token usage.

The real client libraries (and the instrumentations wrapped around them) talk to it as they would to
the provider: chat completions (plain and streamed, with or without ``stream_options.include_usage``),
the Responses API, embeddings, and Anthropic messages (plain and streamed) with cache reads and
writes. The usage each answer reports is fixed below, so the matrix can compute every expected cost
from the bundled catalog's list prices.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

__all__ = ["ANTHROPIC_CACHE_READ", "ANTHROPIC_CACHE_WRITE", "CHAT_USAGE", "EMBEDDING_USAGE", "RESPONSES_USAGE",
           "FakeProvider"]

CHAT_USAGE = {"prompt_tokens": 1200, "completion_tokens": 300, "total_tokens": 1500,
              "prompt_tokens_details": {"cached_tokens": 1024, "audio_tokens": 0},
              "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0}}
RESPONSES_USAGE = {"input_tokens": 900, "input_tokens_details": {"cached_tokens": 512}, "output_tokens": 250,
                   "output_tokens_details": {"reasoning_tokens": 64}, "total_tokens": 1150}
EMBEDDING_USAGE = {"prompt_tokens": 8, "total_tokens": 8}
ANTHROPIC_CACHE_WRITE = {"input_tokens": 50, "cache_creation_input_tokens": 2000, "cache_read_input_tokens": 0,
                         "output_tokens": 120}
"""Anthropic's usage counts the cache apart: 50 + 2000 prompt tokens, 2000 of them written to the cache."""
ANTHROPIC_CACHE_READ = {"input_tokens": 3000, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 2000,
                        "output_tokens": 80}
"""3000 + 2000 prompt tokens, 2000 read from the cache: the uncached part is the larger, as in a long chat."""


def _sse(events: list[tuple[str | None, dict[str, Any] | str]]) -> bytes:
    out = []
    for event, data in events:
        text = data if isinstance(data, str) else json.dumps(data)
        out.append((f"event: {event}\n" if event else "") + f"data: {text}\n\n")
    return "".join(out).encode()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    counter = 0
    lock = threading.Lock()

    def _next_id(self) -> int:
        with _Handler.lock:
            _Handler.counter += 1
            return _Handler.counter

    def _send(self, body: bytes, content_type: str) -> None:
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self) -> None:  # noqa: N802
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
        path = self.path.split("?")[0]
        n = self._next_id()
        if path.endswith("/chat/completions"):
            self._chat(body, n)
        elif path.endswith("/responses"):
            self._responses(body, n)
        elif path.endswith("/embeddings"):
            self._embeddings(body)
        elif path.endswith("/messages"):
            self._messages(body, n)
        else:
            self.send_error(404)

    def _chat(self, body: dict[str, Any], n: int) -> None:
        model = body["model"]
        rid = f"chatcmpl-fake{n}"
        if not body.get("stream"):
            reply = {"id": rid, "object": "chat.completion", "created": 1_760_000_000, "model": model,
                     "choices": [{"index": 0, "finish_reason": "stop", "logprobs": None,
                                  "message": {"role": "assistant", "content": "The answer is 4."}}],
                     "usage": CHAT_USAGE, "system_fingerprint": "fp_fake"}
            self._send(json.dumps(reply).encode(), "application/json")
            return
        base = {"id": rid, "object": "chat.completion.chunk", "created": 1_760_000_000, "model": model,
                "system_fingerprint": "fp_fake"}
        chunks: list[tuple[str | None, dict[str, Any] | str]] = [
            (None, {**base, "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}}]}),
            (None, {**base, "choices": [{"index": 0, "delta": {"content": "The answer is 4."}}]}),
            (None, {**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}),
        ]
        if (body.get("stream_options") or {}).get("include_usage"):
            chunks.append((None, {**base, "choices": [], "usage": CHAT_USAGE}))
        chunks.append((None, "[DONE]"))
        self._send(_sse(chunks), "text/event-stream")

    def _responses(self, body: dict[str, Any], n: int) -> None:
        reply = {"id": f"resp_fake{n}", "object": "response", "created_at": 1_760_000_000, "status": "completed",
                 "model": body["model"], "output": [{"type": "message", "id": f"msg_fake{n}", "status": "completed",
                                                     "role": "assistant", "content": [
                                                         {"type": "output_text", "text": "4", "annotations": []}]}],
                 "parallel_tool_calls": True, "tool_choice": "auto", "tools": [], "usage": RESPONSES_USAGE,
                 "error": None, "incomplete_details": None, "instructions": None, "metadata": {},
                 "temperature": 1.0, "top_p": 1.0, "text": {"format": {"type": "text"}}}
        self._send(json.dumps(reply).encode(), "application/json")

    def _embeddings(self, body: dict[str, Any]) -> None:
        inputs = body["input"] if isinstance(body["input"], list) else [body["input"]]
        reply = {"object": "list", "model": body["model"], "usage": EMBEDDING_USAGE,
                 "data": [{"object": "embedding", "index": i, "embedding": [0.1, 0.2, 0.3]}
                          for i in range(len(inputs))]}
        self._send(json.dumps(reply).encode(), "application/json")

    def _messages(self, body: dict[str, Any], n: int) -> None:
        # a system prompt marked for caching is a write the first time, a read after: the client
        # says which it wants in the metadata user id ("cache-write" / "cache-read")
        usage = ANTHROPIC_CACHE_READ if (body.get("metadata") or {}).get("user_id") == "cache-read" \
            else ANTHROPIC_CACHE_WRITE
        mid = f"msg_fake{n}"
        if not body.get("stream"):
            reply = {"id": mid, "type": "message", "role": "assistant", "model": body["model"],
                     "content": [{"type": "text", "text": "The answer is 4."}], "stop_reason": "end_turn",
                     "stop_sequence": None, "usage": usage}
            self._send(json.dumps(reply).encode(), "application/json")
            return
        start_usage = {**usage, "output_tokens": 1}
        events: list[tuple[str | None, dict[str, Any] | str]] = [
            ("message_start", {"type": "message_start", "message": {
                "id": mid, "type": "message", "role": "assistant", "model": body["model"], "content": [],
                "stop_reason": None, "stop_sequence": None, "usage": start_usage}}),
            ("content_block_start", {"type": "content_block_start", "index": 0,
                                     "content_block": {"type": "text", "text": ""}}),
            ("content_block_delta", {"type": "content_block_delta", "index": 0,
                                     "delta": {"type": "text_delta", "text": "The answer is 4."}}),
            ("content_block_stop", {"type": "content_block_stop", "index": 0}),
            ("message_delta", {"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                               "usage": {"output_tokens": usage["output_tokens"]}}),
            ("message_stop", {"type": "message_stop"}),
        ]
        self._send(_sse(events), "text/event-stream")

    def log_message(self, *args: object) -> None:
        pass


class FakeProvider:
    """The fake provider on a free 127.0.0.1 port, served from a daemon thread until :meth:`stop`."""

    def __init__(self) -> None:
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
