#!/usr/bin/env python3
"""Reference fixture for Bonfire's GPT (Sources/BonfireModel/GPT.swift), computed with PyTorch in float64.

Builds the same architecture (token + learned position embeddings, pre-LN blocks with causal multi-head attention and
a 4x GELU-tanh MLP, final LayerNorm, tied LM head; parameter names as in GPT.makeLayout), runs a fixed right-padded
batch and the same objective as GPT.forwardBackward:

    loss = -sum_b sum_t w[b][t] * log pi_T(tok[t+1] | tok[<=t]) - c * sum_{w != 0} H_t,   pi_T = softmax(logits / T)

and writes weights, batch, logits, loss and every gradient into ONE safetensors file (float32, < 1 MB):
    <name>            parameters (float32 values; the maths runs in float64 on exactly those values)
    grad.<name>       d loss / d parameter
    batch.tokens      (B, T) token ids as floats, right-padded with 0;  batch.lengths (B);  batch.weights (B, T-1)
    logits            (B, T, V);   loss (1)
    metadata: config (GPTConfig JSON), temperature, entropy_coefficient

Usage:
    python3 Scripts/make-model-fixture.py                   # writes Tests/BonfireModelTests/Fixtures/gpt_reference.safetensors
    python3 Scripts/make-model-fixture.py --check-swift F   # loads a Swift-written checkpoint F (written by the Swift
                                                            # fixture test) and checks its logits against the fixture
"""
import argparse, json, math, os, sys
import torch
import torch.nn as nn
import torch.nn.functional as F
from safetensors.torch import save_file, load_file
from safetensors import safe_open

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_OUT = os.path.normpath(os.path.join(HERE, "..", "Tests", "BonfireModelTests", "Fixtures", "gpt_reference.safetensors"))
CONFIG = dict(vocabSize=16, contextLength=12, layers=2, heads=2, dim=16, scalarHead=False)
TEMPERATURE, ENTROPY_COEF = 1.25, 0.1
SEQUENCES = [[1, 5, 6, 7, 8, 9, 10, 11, 2], [1, 3, 14, 4], [1, 12, 13, 15, 4, 4, 5, 6, 7, 8, 9, 2], [1, 9]]


class Block(nn.Module):
    def __init__(self, C, H):
        super().__init__()
        self.H = H
        self.ln_1 = nn.LayerNorm(C, eps=1e-5)
        self.attn = nn.Module()
        self.attn.c_attn = nn.Linear(C, 3 * C)
        self.attn.c_proj = nn.Linear(C, C)
        self.ln_2 = nn.LayerNorm(C, eps=1e-5)
        self.mlp = nn.Module()
        self.mlp.c_fc = nn.Linear(C, 4 * C)
        self.mlp.c_proj = nn.Linear(4 * C, C)

    def forward(self, x):
        B, T, C = x.shape
        q, k, v = self.attn.c_attn(self.ln_1(x)).split(C, dim=2)
        q, k, v = [t.view(B, T, self.H, C // self.H).transpose(1, 2) for t in (q, k, v)]
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        x = x + self.attn.c_proj(y.transpose(1, 2).reshape(B, T, C))
        return x + self.mlp.c_proj(F.gelu(self.mlp.c_fc(self.ln_2(x)), approximate="tanh"))


class GPT(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        C = cfg["dim"]
        self.wte = nn.Parameter(torch.zeros(cfg["vocabSize"], C))
        self.wpe = nn.Parameter(torch.zeros(cfg["contextLength"], C))
        self.h = nn.ModuleList([Block(C, cfg["heads"]) for _ in range(cfg["layers"])])
        self.ln_f = nn.LayerNorm(C, eps=1e-5)

    def forward(self, idx):
        T = idx.shape[1]
        x = self.wte[idx] + self.wpe[:T]
        for b in self.h:
            x = b(x)
        return self.ln_f(x) @ self.wte.t()


def objective(logits, tokens, weights, temperature, coef):
    logp = F.log_softmax(logits / temperature, dim=-1)[:, :-1]           # (B, T-1, V)
    lp = logp.gather(-1, tokens[:, 1:].unsqueeze(-1)).squeeze(-1)          # (B, T-1)
    ent = -(logp.exp() * logp).sum(-1)
    mask = (weights != 0).to(logits.dtype)
    return -(weights * lp).sum() - coef * (mask * ent).sum()


def batch_tensors():
    B, T = len(SEQUENCES), max(map(len, SEQUENCES))
    tokens = torch.zeros(B, T, dtype=torch.long)
    weights = torch.zeros(B, T - 1, dtype=torch.float64)
    for b, s in enumerate(SEQUENCES):
        tokens[b, :len(s)] = torch.tensor(s)
        for t in range(len(s) - 1):
            weights[b, t] = 0.0 if t % 4 == 2 else 0.25 * (b + 1) - 0.03 * t   # some zero, some negative
    return tokens, weights


def make(out):
    torch.manual_seed(1234)
    model = GPT(CONFIG)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("ln_1.weight") or name.endswith("ln_2.weight") or name == "ln_f.weight":
                p.copy_(1 + 0.1 * torch.randn_like(p))
            elif p.dim() >= 2:
                p.copy_(0.3 * torch.randn_like(p) / math.sqrt(p.shape[-1]) * 4)
            else:
                p.copy_(0.1 * torch.randn_like(p))
    model = model.double()
    with torch.no_grad():   # make the float64 weights exactly float32-representable
        for p in model.parameters():
            p.copy_(p.float().double())
    tokens, weights = batch_tensors()
    logits = model(tokens)
    loss = objective(logits, tokens, weights, TEMPERATURE, ENTROPY_COEF)
    loss.backward()
    tensors = {}
    for name, p in model.named_parameters():
        tensors[name] = p.detach().float().contiguous()
        tensors["grad." + name] = p.grad.detach().float().contiguous()
    tensors["batch.tokens"] = tokens.float()
    tensors["batch.lengths"] = torch.tensor([float(len(s)) for s in SEQUENCES])
    tensors["batch.weights"] = weights.float()
    tensors["logits"] = logits.detach().float().contiguous()
    tensors["loss"] = torch.tensor([loss.item()], dtype=torch.float32)
    meta = {"config": json.dumps(CONFIG), "temperature": repr(TEMPERATURE), "entropy_coefficient": repr(ENTROPY_COEF),
            "generator": "Scripts/make-model-fixture.py (torch %s, float64 maths)" % torch.__version__}
    os.makedirs(os.path.dirname(out), exist_ok=True)
    save_file(tensors, out, metadata=meta)
    print("wrote %s (%d bytes, %d tensors), loss %.6f" % (out, os.path.getsize(out), len(tensors), loss.item()))


def check_swift(path, fixture):
    """A checkpoint written by Swift (Checkpoint.save) must load with Python's safetensors and reproduce the fixture."""
    with safe_open(path, "pt") as f:
        meta = f.metadata()
    cfg = json.loads(meta["bonfire.config"])
    state = load_file(path)
    ref = load_file(fixture)
    model = GPT(cfg).double()
    names = [n for n, _ in model.named_parameters()]
    missing = [n for n in names if n not in state]
    if missing:
        sys.exit("FAIL: Swift checkpoint lacks tensors %s" % missing)
    model.load_state_dict({n: state[n].double() for n in names})
    tokens = ref["batch.tokens"].long()
    with torch.no_grad():
        logits = model(tokens)
    diff = (logits.float() - ref["logits"]).abs().max().item()
    print("Swift-written %s: %d tensors, metadata keys %s, step %s; logits maxdiff vs fixture %.3g"
          % (os.path.basename(path), len(state), sorted(meta), meta.get("bonfire.step"), diff))
    if diff > 1e-5:
        sys.exit("FAIL: logits differ")
    print("OK: Python safetensors reads the Swift-written checkpoint")


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=DEFAULT_OUT)
    ap.add_argument("--check-swift", metavar="FILE")
    a = ap.parse_args()
    if a.check_swift:
        check_swift(a.check_swift, a.out)
    else:
        make(a.out)
