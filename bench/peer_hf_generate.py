"""The peer of bench/llm.py: a plain transformers `generate` loop behind FastAPI, as one would write it without
an engine. One request at a time (a lock: `generate` is not batched across requests), streamed as OpenAI SSE
chunks through TextIteratorStreamer. Usage: peer_hf_generate.py MODEL_DIR PORT"""

from __future__ import annotations

import asyncio
import json
import sys
import threading

import torch
import uvicorn
from fastapi import FastAPI, Request
from starlette.responses import StreamingResponse
from transformers import AutoModelForCausalLM, AutoTokenizer, TextIteratorStreamer

directory, port = sys.argv[1], int(sys.argv[2])
tokenizer = AutoTokenizer.from_pretrained(directory)
model = AutoModelForCausalLM.from_pretrained(directory, dtype=torch.float32).eval()
lock = threading.Lock()
app = FastAPI()


@app.get("/v2/health/ready")
def ready() -> dict[str, bool]:
    return {"ready": True}


@app.post("/v1/chat/completions")
async def chat(request: Request) -> StreamingResponse:
    body = await request.json()
    ids = tokenizer.apply_chat_template(body["messages"], add_generation_prompt=True, return_tensors="pt",
                                        return_dict=True)
    streamer = TextIteratorStreamer(tokenizer, skip_prompt=True, skip_special_tokens=True)

    made: list[int] = []

    def run() -> None:
        with lock, torch.inference_mode():
            out = model.generate(**ids, max_new_tokens=int(body.get("max_tokens", 64)), do_sample=False,
                                 streamer=streamer)
            made.append(int(out.shape[1] - ids["input_ids"].shape[1]))

    thread = threading.Thread(target=run, daemon=True)
    thread.start()

    async def events():  # type: ignore[no-untyped-def]
        loop = asyncio.get_running_loop()
        it = iter(streamer)
        while True:
            text = await loop.run_in_executor(None, next, it, None)
            if text is None:
                break
            if text:
                yield b"data: " + json.dumps({"choices": [{"index": 0, "delta": {"content": text}}]}).encode() + b"\n\n"
        await loop.run_in_executor(None, thread.join)
        usage = {"completion_tokens": made[0] if made else 0}
        yield b"data: " + json.dumps({"choices": [], "usage": usage}).encode() + b"\n\n"
        yield b"data: [DONE]\n\n"

    return StreamingResponse(events(), media_type="text/event-stream")


uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning")
