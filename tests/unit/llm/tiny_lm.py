"""A tiny random-weight Llama and a word-level tokenizer, built from a config in milliseconds: enough to check
the engine's batching against transformers' own generate, token for token."""

from __future__ import annotations

from typing import Any

VOCAB = 300
EOS = 1


def tiny_llama(context: int = 128) -> tuple[Any, Any]:
    import torch
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=VOCAB, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=context,
                      eos_token_id=EOS, bos_token_id=0, pad_token_id=2)
    model = LlamaForCausalLM(cfg).eval()
    tok = Tokenizer(models.WordLevel({f"w{i}": i for i in range(VOCAB)}, unk_token="w3"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    from tokenizers import decoders

    tok.decoder = decoders.WordPiece(prefix="##", cleanup=False)
    hf = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="w1", bos_token="w0", pad_token="w2",
                                 unk_token="w3")
    return model, hf


def reference(model: Any, prompt: list[int], n: int) -> list[int]:
    """transformers' greedy generate, alone (no padding), ignoring EOS."""
    import torch

    out = model.generate(torch.tensor([prompt]), max_new_tokens=n, do_sample=False, eos_token_id=None,
                         pad_token_id=2)
    return [int(t) for t in out[0, len(prompt):]]


def save_tiny_llama(folder: Any) -> Any:
    """`tiny_llama()` saved as a Hugging Face directory (model and tokenizer) in `folder`; returns the model."""
    model, tokenizer = tiny_llama()
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return model
