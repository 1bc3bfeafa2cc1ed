#!/usr/bin/env python3
"""PyTorch CPU baseline for `bonfire-bench hf` (same 124 M Llama-family config, same work, same thread count).

  model      = transformers LlamaForCausalLM: vocab 50257, d768, 12 layers, 12 heads (--kv-heads), SwiGLU 2048,
               ctx 1024, tied head, float32, eager attention
  train step = forward + mean next-token cross-entropy over B x T random tokens + backward + grad clip 1.0 + AdamW
  sampling   = KV-cache decoding (model.generate, DynamicCache), one 8-token prompt x S samples x K new tokens,
               temperature 1 multinomial, no stopping
Prints `RESULT impl=pytorch config=llama124m threads=<n> train_s=... train_tok_s=... sample_tok_s=...`.
Usage: OMP_NUM_THREADS=1 python3 Scripts/bench_hf_pytorch.py --threads 1 [--modes train,sample]
"""
import argparse, statistics, time
import torch
from transformers import LlamaConfig, LlamaForCausalLM


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--modes", default="train,sample")
    ap.add_argument("--train-steps", type=int, default=3)
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--seq-len", type=int, default=128)
    ap.add_argument("--samples", type=int, default=8)
    ap.add_argument("--new-tokens", type=int, default=32)
    ap.add_argument("--sample-rounds", type=int, default=2)
    ap.add_argument("--kv-heads", type=int, default=12)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=50257, hidden_size=768, intermediate_size=2048, num_hidden_layers=12,
                      num_attention_heads=12, num_key_value_heads=a.kv_heads, max_position_embeddings=1024,
                      rms_norm_eps=1e-5, rope_theta=10000.0, tie_word_embeddings=True, attn_implementation="eager")
    t0 = time.perf_counter()
    model = LlamaForCausalLM(cfg).float()
    n = sum(p.numel() for p in model.parameters())
    print(f"bench_hf_pytorch: torch {torch.__version__}, threads {torch.get_num_threads()}, {n} parameters, "
          f"init {time.perf_counter() - t0:.1f} s")
    modes = a.modes.split(",")
    res = []
    if "train" in modes:
        model.train()
        opt = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=0.0)
        x = torch.randint(0, cfg.vocab_size, (a.batch, a.seq_len))
        times = []
        for i in range(a.train_steps + 1):
            t = time.perf_counter()
            opt.zero_grad(set_to_none=True)
            logits = model(input_ids=x).logits
            loss = torch.nn.functional.cross_entropy(logits[:, :-1].reshape(-1, cfg.vocab_size), x[:, 1:].reshape(-1))
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            dt = time.perf_counter() - t
            print(f"  train step {i}: {dt:.2f} s, loss {loss.item():.3f}")
            if i >= 1: times.append(dt)
        s = statistics.median(times)
        print(f"train: {a.batch}x{a.seq_len} tokens, {s:.2f} s/step, {a.batch * a.seq_len / s:.0f} tok/s")
        res.append(f"train_s={s:.3f} train_tok_s={a.batch * a.seq_len / s:.1f}")
    if "sample" in modes:
        model.eval()
        prompt = torch.randint(0, cfg.vocab_size, (1, 8))
        times = []
        with torch.no_grad():
            for i in range(a.sample_rounds + 1):
                t = time.perf_counter()
                out = model.generate(prompt, do_sample=True, temperature=1.0, top_k=0, top_p=1.0,
                                     num_return_sequences=a.samples, max_new_tokens=a.new_tokens,
                                     min_new_tokens=a.new_tokens, use_cache=True, pad_token_id=0)
                dt = time.perf_counter() - t
                if i >= 1: times.append(dt)
        produced = (out.shape[1] - 8) * out.shape[0]
        s = statistics.median(times)
        print(f"sample: {a.samples} samples x {a.new_tokens} tokens in {s:.2f} s, {produced / s:.0f} tok/s")
        res.append(f"sample_tok_s={produced / s:.1f}")
    print(f"RESULT impl=pytorch config=llama124m threads={a.threads} " + " ".join(res))


if __name__ == "__main__":
    main()
