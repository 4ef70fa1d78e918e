"""A small OpenAI-compatible chat server for tests: `python chat_server.py MODEL_DIR READY_FILE LOG_FILE`.

POST /v1/chat/completions answers with the local transformers model (greedy, max_tokens), binds 127.0.0.1 on
a free port, writes the port to READY_FILE once it serves, and appends each request (body and the
Authorization header) to LOG_FILE as a JSON line, so a test can check what the client sent.
"""

import json
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

folder, ready, log = sys.argv[1:4]
tokenizer = AutoTokenizer.from_pretrained(folder)
model = AutoModelForCausalLM.from_pretrained(folder).eval()


class Handler(BaseHTTPRequestHandler):
    def do_POST(self):  # noqa: N802 (http.server's name)
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        with open(log, "a", encoding="utf-8") as f:
            f.write(json.dumps({"path": self.path, "auth": self.headers.get("Authorization"), "body": body}) + "\n")
        if self.path != "/v1/chat/completions":
            self.send_response(404)
            self.end_headers()
            return
        text = tokenizer.apply_chat_template(body["messages"], add_generation_prompt=True, tokenize=False)
        ids = tokenizer(text, return_tensors="pt", add_special_tokens=False)["input_ids"]
        with torch.no_grad():
            out = model.generate(ids, max_new_tokens=int(body.get("max_tokens", 32)), do_sample=False,
                                 pad_token_id=tokenizer.pad_token_id)  # fmt: skip
        content = tokenizer.decode(out[0, ids.shape[1] :], skip_special_tokens=True)
        reply = json.dumps({"choices": [{"index": 0, "message": {"role": "assistant", "content": content}}]}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)

    def log_message(self, *args):
        pass


server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
with open(ready, "w") as f:
    f.write(str(server.server_address[1]))
server.serve_forever()
