#!/usr/bin/env python3
"""Reference fixtures for Bonfire's Hugging Face model support (Sources/BonfireModel/HF/), built with transformers.

For each case below: a random-initialised tiny model of the named architecture is created from its transformers
config class, every parameter is drawn at random (norm gains around 1, biases non-zero, so every path matters), the
weights are rounded to the stored dtype and written with `save_pretrained` into
    Tests/BonfireModelTests/Fixtures/hf/<case>/            (config.json + model.safetensors or shards + index)
Then the saved directory is loaded back with `from_pretrained(dtype=float32)` and run in float64 on exactly the
stored values; written to
    Tests/BonfireModelTests/Fixtures/hf/<case>.reference.safetensors
        tokens (S, T) ids as floats, right-padded with 0; lengths (S)
        logits (S, T, V) (rows >= length are 0)
        loss (1) = sum_s sum_t -log softmax(logits[s, t])[tokens[s, t+1]]
        grad.<hf name>   d loss / d parameter for a few parameters (stored HF shape)

Cases: gpt2 (tied, Conv1D), llama with GQA + llama3 rope scaling (untied), qwen2 with q/k/v biases (tied, sharded),
llama stored bf16 (linear rope scaling, tied, MHA), llama stored f16 (attention_bias, MQA, untied).

Usage:
    pip install torch transformers safetensors
    python3 Scripts/make-hf-fixtures.py                  # writes the fixtures (about 0.5 MB)
    python3 Scripts/make-hf-fixtures.py --check-export D # D written by `bonfire-bench hf-roundtrip --out D`: loads D
                                                         # with transformers and compares its logits with
                                                         # D/bonfire_logits.safetensors (Bonfire's); exit 1 on mismatch
"""
import argparse, json, os, shutil, sys
import torch
from safetensors.torch import save_file, load_file
import transformers
from transformers import (GPT2Config, GPT2LMHeadModel, LlamaConfig, LlamaForCausalLM, Qwen2Config,
                          Qwen2ForCausalLM, AutoModelForCausalLM)

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.normpath(os.path.join(HERE, "..", "Tests", "BonfireModelTests", "Fixtures", "hf"))
V = 48
SEQS = [[3, 17, 5, 40, 22, 9, 1, 30, 47], [12, 0, 8, 33, 21], [7, 7, 45, 2, 19, 26, 38, 11, 4, 14, 29, 6], [5, 44]]


def cases():
    small = dict(vocab_size=V, hidden_size=32, intermediate_size=48, num_hidden_layers=2, max_position_embeddings=32)
    yield "gpt2", GPT2Config(vocab_size=V, n_positions=24, n_embd=32, n_layer=2, n_head=4), GPT2LMHeadModel, torch.float32, None, [
        "transformer.wte.weight", "transformer.wpe.weight", "transformer.h.0.attn.c_attn.weight",
        "transformer.h.0.attn.c_attn.bias", "transformer.h.1.mlp.c_fc.weight", "transformer.h.1.ln_2.bias",
        "transformer.ln_f.weight"]
    yield "llama_gqa_llama3", LlamaConfig(**small, num_attention_heads=4, num_key_value_heads=2, rope_theta=100.0,
                                          # wavelengths 6.3 / 19.9 / 62.8 / 199 vs 8 and 32: all three llama3 branches
                                          rope_scaling=dict(rope_type="llama3", factor=8.0, low_freq_factor=0.5,
                                                            high_freq_factor=2.0, original_max_position_embeddings=16),
                                          rms_norm_eps=1e-5, tie_word_embeddings=False), LlamaForCausalLM, torch.float32, None, [
        "model.embed_tokens.weight", "model.layers.0.self_attn.q_proj.weight", "model.layers.1.self_attn.k_proj.weight",
        "model.layers.0.self_attn.v_proj.weight", "model.layers.1.mlp.gate_proj.weight", "model.layers.0.input_layernorm.weight",
        "model.norm.weight", "lm_head.weight"]
    yield "qwen2_bias_sharded", Qwen2Config(**small, num_attention_heads=4, num_key_value_heads=2, rope_theta=1000000.0,
                                            rms_norm_eps=1e-6, tie_word_embeddings=True), Qwen2ForCausalLM, torch.float32, "40KB", [
        "model.embed_tokens.weight", "model.layers.0.self_attn.q_proj.bias", "model.layers.1.self_attn.k_proj.bias",
        "model.layers.1.self_attn.v_proj.bias", "model.layers.0.self_attn.o_proj.weight", "model.layers.1.mlp.up_proj.weight",
        "model.layers.1.post_attention_layernorm.weight"]
    yield "llama_bf16_linear", LlamaConfig(**small, num_attention_heads=4, num_key_value_heads=4, rope_theta=500000.0,
                                           rope_scaling=dict(rope_type="linear", factor=2.0), rms_norm_eps=1e-6,
                                           tie_word_embeddings=True), LlamaForCausalLM, torch.bfloat16, None, [
        "model.embed_tokens.weight", "model.layers.0.self_attn.q_proj.weight", "model.layers.1.mlp.down_proj.weight",
        "model.norm.weight"]
    yield "llama_f16_bias_mqa", LlamaConfig(**small, num_attention_heads=4, num_key_value_heads=1, attention_bias=True,
                                            rms_norm_eps=1e-5, tie_word_embeddings=False), LlamaForCausalLM, torch.float16, None, [
        "model.embed_tokens.weight", "model.layers.0.self_attn.k_proj.weight", "model.layers.0.self_attn.o_proj.bias",
        "model.layers.1.self_attn.q_proj.bias", "model.layers.1.mlp.gate_proj.weight", "lm_head.weight"]


def randomise(model, seed):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "norm" in name or name.endswith(("ln_1.weight", "ln_2.weight", "ln_f.weight")):
                p.copy_(1 + 0.2 * torch.randn(p.shape, generator=g))
            elif p.dim() == 1:
                p.copy_(0.1 * torch.randn(p.shape, generator=g))
            else:
                p.copy_(0.2 * torch.randn(p.shape, generator=g))


def reference(model_dir, grad_names):
    m = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).double()
    m.eval()
    S, T = len(SEQS), max(len(s) for s in SEQS)
    tokens = torch.zeros(S, T); lengths = torch.tensor([float(len(s)) for s in SEQS])
    logits = torch.zeros(S, T, m.config.vocab_size, dtype=torch.float64)
    loss = torch.zeros((), dtype=torch.float64)
    for i, s in enumerate(SEQS):
        ids = torch.tensor([s])
        tokens[i, :len(s)] = ids[0].float()
        out = m(input_ids=ids).logits[0]
        logits[i, :len(s)] = out.detach()
        lp = torch.log_softmax(out, dim=-1)
        loss = loss - lp[torch.arange(len(s) - 1), ids[0, 1:]].sum()
    loss.backward()
    params = dict(m.named_parameters())
    out = {"tokens": tokens, "lengths": lengths, "logits": logits.float(), "loss": loss.detach().reshape(1).float()}
    for n in grad_names:
        out["grad." + n] = params[n].grad.float().contiguous()
    return out


def build():
    os.makedirs(OUT, exist_ok=True)
    for i, (name, cfg, cls, dtype, shard, grads) in enumerate(cases()):
        d = os.path.join(OUT, name)
        shutil.rmtree(d, ignore_errors=True)
        torch.manual_seed(i)
        model = cls(cfg)
        randomise(model, 1000 + i)
        model = model.to(dtype)
        kw = {"max_shard_size": shard} if shard else {}
        model.save_pretrained(d, **kw)
        for extra in ("generation_config.json",):
            p = os.path.join(d, extra)
            if os.path.exists(p): os.remove(p)
        ref = reference(d, grads)
        save_file(ref, os.path.join(OUT, name + ".reference.safetensors"),
                  metadata={"case": name, "stored_dtype": str(dtype), "transformers": transformers.__version__,
                            "torch": torch.__version__})
        files = sorted(os.listdir(d))
        size = sum(os.path.getsize(os.path.join(d, f)) for f in files)
        print(f"{name}: {files} {size} bytes, loss {ref['loss'].item():.6f}")
    total = sum(os.path.getsize(os.path.join(r, f)) for r, _, fs in os.walk(OUT) for f in fs)
    print(f"total {total} bytes in {OUT}")


def check_export(d):
    theirs = load_file(os.path.join(d, "bonfire_logits.safetensors"))
    m = AutoModelForCausalLM.from_pretrained(d, dtype=torch.float32)
    m.eval()
    tokens, lengths, ref = theirs["tokens"], theirs["lengths"], theirs["logits"]
    worst = 0.0
    with torch.no_grad():
        for i in range(tokens.shape[0]):
            L = int(lengths[i].item())
            ids = tokens[i, :L].long().unsqueeze(0)
            out = m(input_ids=ids).logits[0].float()
            b = ref[i, :L]
            scale = b.abs().max().item()
            rel = ((out - b).abs() / torch.clamp(b.abs(), min=1e-2 * scale)).max().item()
            worst = max(worst, rel)
    print(f"{m.__class__.__name__} from {d}: {sum(p.numel() for p in m.parameters())} parameters, "
          f"max rel logit difference vs Bonfire {worst:.3e}")
    ok = worst <= 1e-4
    print("EXPORT OK" if ok else "EXPORT MISMATCH")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--check-export", metavar="DIR")
    a = ap.parse_args()
    if a.check_export:
        check_export(a.check_export)
    else:
        build()
