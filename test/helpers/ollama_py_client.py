"""Drives an Ollama API with the real `ollama` PyPI client; prints one JSON object of what it got.

usage: ollama_py_client.py HOST KEY MODEL PROMPT
"""
import json
import sys

import ollama

host, key, model, prompt = sys.argv[1:5]
client = ollama.Client(host=host, headers={"Authorization": f"Bearer {key}"})
opts = {"temperature": 0, "num_predict": 24, "seed": 1}
msgs = [{"role": "user", "content": prompt}]
out = {}

chat = client.chat(model=model, messages=msgs, options=opts)
out["chat"] = chat.message.content
out["chat_eval_count"] = chat.eval_count
out["chat_done_reason"] = chat.done_reason
out["chat_stream"] = "".join(p.message.content for p in client.chat(model=model, messages=msgs, options=opts, stream=True))
gen = client.generate(model=model, prompt=prompt, options=opts)
out["generate"] = gen.response
out["generate_context_len"] = len(gen.context or [])
out["generate_stream"] = "".join(p.response for p in client.generate(model=model, prompt=prompt, options=opts, stream=True))
js = client.chat(model=model, messages=[{"role": "user", "content": "Reply with a JSON object with the key \"capital\" for the capital of France."}], format="json", options={"temperature": 0, "num_predict": 64})
out["json"] = js.message.content
out["json_done_reason"] = js.done_reason
out["list"] = [m.model for m in client.list().models]
show = client.show(model)
out["show_family"] = show.details.family
out["show_template"] = show.template
out["ps"] = [m.model for m in client.ps().models]
try:
    ollama.Client(host=host, headers={"Authorization": "Bearer wrong"}).list()
    out["wrong_key"] = None
except ollama.ResponseError as e:
    out["wrong_key"] = e.status_code
print(json.dumps(out))
