#!/usr/bin/env python3
"""A random-initialised Hugging Face model directory Bonfire can run end to end (`bonfire train --init DIR`,
`bonfire local --set model.path=DIR`), built with the reference libraries (pip install torch transformers tokenizers
safetensors; checked with transformers 5.24, tokenizers 0.23.3, torch 2.13).

Writes into OUT (created):
  tokenizer.json        byte-level BPE (GPT-2 pre-tokenisation) trained with `tokenizers` on a small arithmetic /
                        GSM8K-style corpus; specials: llama <s> (BOS) </s> (EOS); gpt2 <|endoftext|> (both)
  config.json, model.safetensors   `save_pretrained` of a LlamaForCausalLM / GPT2LMHeadModel with
                        vocab_size = --model-vocab (default: the tokenizer's size), bos/eos_token_id set
  tokenizer_config.json, special_tokens_map.json   via PreTrainedTokenizerFast.save_pretrained
Prints one JSON line: {"vocab": tokenizer size, "model_vocab": ..., "parameters": ..., "bos": ..., "eos": ...}.

Used by Tests/BonfireClusterTests/HFRunTests.swift (tiny sizes) and for the 124 M measurement in docs/models.md:
    python3 Scripts/make-run-fixture.py /tmp/gpt2-124m --arch gpt2 --model-vocab 50257 --dim 768 --layers 12 \
        --heads 12 --context 1024
"""
import argparse, json, os, sys

import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import GPT2Config, GPT2LMHeadModel, LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast


def corpus():
    out = []
    for a in range(0, 60):
        for b in range(0, 60, 7):
            out.append(f"What is {a} + {b}? The answer is {a} + {b} = {a + b}.\n#### {a + b}")
            out.append(f"Tom has {a} apples and buys {b} more. How many apples now? {a} + {b} = {a + b} #### {a + b}")
    out += ["def add(a, b):\n    return a + b\n", "Answer with \\boxed{42}.", "Compute 3 * 4 - 5 = 7"]
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--arch", choices=["llama", "gpt2"], default="llama")
    ap.add_argument("--tokenizer-vocab", type=int, default=320, help="BPE vocabulary size to train")
    ap.add_argument("--model-vocab", type=int, default=0, help="config vocab_size (0 = the tokenizer's size)")
    ap.add_argument("--dim", type=int, default=32)
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--heads", type=int, default=4)
    ap.add_argument("--kv-heads", type=int, default=2)
    ap.add_argument("--context", type=int, default=128)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    torch.manual_seed(a.seed)

    specials = ["<s>", "</s>"] if a.arch == "llama" else ["<|endoftext|>"]
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=a.tokenizer_vocab, special_tokens=specials, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(corpus(), trainer)
    vocab = tok.get_vocab_size()
    bos, eos = tok.token_to_id(specials[0]), tok.token_to_id(specials[-1])
    model_vocab = a.model_vocab or vocab

    if a.arch == "llama":
        cfg = LlamaConfig(vocab_size=model_vocab, hidden_size=a.dim, intermediate_size=a.dim * 2,
                          num_hidden_layers=a.layers, num_attention_heads=a.heads, num_key_value_heads=a.kv_heads,
                          max_position_embeddings=a.context, rms_norm_eps=1e-5, rope_theta=10000.0,
                          tie_word_embeddings=True, bos_token_id=bos, eos_token_id=eos)
        model = LlamaForCausalLM(cfg)
    else:
        cfg = GPT2Config(vocab_size=model_vocab, n_positions=a.context, n_embd=a.dim, n_layer=a.layers,
                         n_head=a.heads, bos_token_id=bos, eos_token_id=eos)
        model = GPT2LMHeadModel(cfg)
    model.save_pretrained(a.out, safe_serialization=True)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token=specials[0], eos_token=specials[-1])
    fast.save_pretrained(a.out)
    tok.save(os.path.join(a.out, "tokenizer.json"))
    print(json.dumps({"vocab": vocab, "model_vocab": model_vocab, "bos": bos, "eos": eos,
                      "parameters": sum(p.numel() for p in model.parameters())}))


if __name__ == "__main__":
    sys.exit(main())
