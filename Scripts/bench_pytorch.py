#!/usr/bin/env python3
"""PyTorch CPU baseline for `bonfire-bench model` (same configs, same work, same thread count).

  train step = forward + mean token cross-entropy over B full-length sequences + backward + grad clip (1.0) + AdamW
  sampling   = KV-cache decoding, one 8-token prompt x 32 samples x 48 new tokens, temperature 1 (multinomial)
Architecture as Scripts/make-model-fixture.py (GPT-2 style, pre-LN, GELU-tanh, tied head), float32.
Prints `RESULT impl=pytorch config=<name> threads=<n> train_ms=… train_tok_s=… sample_tok_s=…` lines.
Usage: python3 Scripts/bench_pytorch.py --threads 1 [--configs tiny,small] [--train-steps 10] [--sample-rounds 5]
"""
import argparse, math, statistics, time
import torch
import torch.nn as nn
import torch.nn.functional as F

CONFIGS = {
    "tiny": dict(vocabSize=32, contextLength=64, layers=4, heads=4, dim=128),
    "small": dict(vocabSize=64, contextLength=128, layers=6, heads=8, dim=256),
}
BATCH, SAMPLES, PROMPT, NEW = 32, 32, 8, 48


class Block(nn.Module):
    def __init__(self, C, H):
        super().__init__()
        self.H = H
        self.ln_1, self.ln_2 = nn.LayerNorm(C), nn.LayerNorm(C)
        self.c_attn, self.c_proj = nn.Linear(C, 3 * C), nn.Linear(C, C)
        self.c_fc, self.mlp_proj = nn.Linear(C, 4 * C), nn.Linear(4 * C, C)

    def forward(self, x, cache=None, pos=0):
        B, T, C = x.shape
        q, k, v = self.c_attn(self.ln_1(x)).split(C, dim=2)
        q, k, v = [t.view(B, T, self.H, C // self.H).transpose(1, 2) for t in (q, k, v)]
        if cache is None:
            y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        else:   # cache: preallocated (B, H, ctx, hd) K and V
            cache[0][:, :, pos:pos + T] = k
            cache[1][:, :, pos:pos + T] = v
            kk, vv = cache[0][:, :, :pos + T], cache[1][:, :, :pos + T]
            y = F.scaled_dot_product_attention(q, kk, vv, is_causal=(T > 1))
        x = x + self.c_proj(y.transpose(1, 2).reshape(B, T, C))
        return x + self.mlp_proj(F.gelu(self.c_fc(self.ln_2(x)), approximate="tanh"))


class GPT(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        C = cfg["dim"]
        self.cfg = cfg
        self.wte = nn.Parameter(0.02 * torch.randn(cfg["vocabSize"], C))
        self.wpe = nn.Parameter(0.02 * torch.randn(cfg["contextLength"], C))
        self.h = nn.ModuleList([Block(C, cfg["heads"]) for _ in range(cfg["layers"])])
        self.ln_f = nn.LayerNorm(C)

    def forward(self, idx, caches=None, pos=0):
        T = idx.shape[1]
        x = self.wte[idx] + self.wpe[pos:pos + T]
        for i, b in enumerate(self.h):
            x = b(x, None if caches is None else caches[i], pos)
        return self.ln_f(x) @ self.wte.t()


def bench(name, cfg, train_steps, sample_rounds):
    torch.manual_seed(0)
    model = GPT(cfg)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-4, betas=(0.9, 0.95), weight_decay=0.1)
    T, V = cfg["contextLength"], cfg["vocabSize"]
    batch = torch.randint(0, V, (BATCH, T))
    times = []
    for i in range(train_steps + 2 if train_steps > 0 else 0):
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        logits = model(batch)
        loss = F.cross_entropy(logits[:, :-1].reshape(-1, V), batch[:, 1:].reshape(-1))
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        if i >= 2:
            times.append(time.perf_counter() - t0)
    train = statistics.median(times) if times else float('nan')

    prompt = torch.randint(0, V, (1, PROMPT)).repeat(SAMPLES, 1)
    H, C = cfg["heads"], cfg["dim"]
    stimes = []
    with torch.inference_mode():
        for r in range(sample_rounds + 1):
            g = torch.Generator().manual_seed(r)
            t0 = time.perf_counter()
            caches = [(torch.empty(SAMPLES, H, T, C // H), torch.empty(SAMPLES, H, T, C // H)) for _ in range(cfg["layers"])]
            logits = model(prompt, caches, 0)[:, -1]
            pos = PROMPT
            out = []
            for _ in range(NEW):
                probs = torch.softmax(logits, dim=-1)
                tok = torch.multinomial(probs, 1, generator=g)
                logp = torch.log_softmax(logits, -1).gather(-1, tok)   # per-token log-prob, as Bonfire returns
                out.append(tok)
                if len(out) == NEW:
                    break
                logits = model(tok, caches, pos)[:, -1]
                pos += 1
            if r >= 1:
                stimes.append(time.perf_counter() - t0)
    sample = SAMPLES * NEW / statistics.median(stimes)
    print("%-5s train step %.1f ms (%.0f tok/s, loss %.3f)  sampling %.0f tok/s"
          % (name, train * 1e3, BATCH * T / train, loss.item() if times else float('nan'), sample))
    print("RESULT impl=pytorch config=%s threads=%d train_ms=%.2f train_tok_s=%.0f sample_tok_s=%.0f"
          % (name, torch.get_num_threads(), train * 1e3, BATCH * T / train, sample))


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--configs", default="tiny,small")
    ap.add_argument("--train-steps", type=int, default=10)
    ap.add_argument("--sample-rounds", type=int, default=5)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    print("bench_pytorch: torch %s, threads %d" % (torch.__version__, torch.get_num_threads()))
    for n in a.configs.split(","):
        bench(n, CONFIGS[n], a.train_steps, a.sample_rounds)
