#!/usr/bin/env python3
"""Hugging Face TRL GRPOTrainer step time on the same shape as `bonfire-bench rl-step`, and the ratio.

Shape: a GPT-2 config of the tiny Bonfire size (4 layers, d128, 4 heads, context 64) built locally (no download) with a
char-level WordLevel tokenizer over Bonfire's 64-symbol vocabulary; 8 prompts x 8 completions of <= 16 tokens per
step, beta = 0 (no reference model), CPU. The reward is a trivial function of the completion text (the cost of
scoring is negligible on both sides). Both programs run in this one invocation under the same environment, so the
OpenBLAS/torch kernels and the machine load are comparable (NOTES-build.md: figures drift 5-20% between runs).

Usage: python3 Scripts/bench_trl.py [--bonfire-bench .build/release/bonfire-bench] [--steps 10] [--threads 1]
Needs: pip install torch transformers trl datasets tokenizers  (TRL 1.16 was checked on this machine kind).
"""
import argparse
import os
import re
import subprocess
import sys
import tempfile
import time


def bonfire_rate(binary, threads, steps):
    out = subprocess.run([binary, "rl-step", "--threads", str(threads), "--steps", str(steps)],
                         check=True, capture_output=True, text=True).stdout
    print(out.strip())
    m = re.search(r"ms_per_step=([0-9.]+)", out)
    return float(m.group(1))


def trl_rate(threads, steps):
    import torch
    torch.set_num_threads(threads)
    from datasets import Dataset
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast
    from trl import GRPOConfig, GRPOTrainer

    chars = list("0123456789+-*/%()=<>!?:,;.# \n" + "abcdefghijklmnopqrstuvwxyz" + "[]{}_|")
    vocab = {"<pad>": 0, "<bos>": 1, "<eos>": 2}
    for c in chars:
        vocab[c] = len(vocab)
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<pad>"))
    tok.pre_tokenizer = pre_tokenizers.Split("", "isolated")
    hf_tok = PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", bos_token="<bos>", eos_token="<eos>")
    hf_tok.padding_side = "left"
    cfg = GPT2Config(vocab_size=len(vocab), n_positions=64, n_embd=128, n_layer=4, n_head=4,
                     bos_token_id=1, eos_token_id=2, pad_token_id=0)
    model = GPT2LMHeadModel(cfg)
    prompts = [f"{a}+{b}*{c}=" for a, b, c in zip(range(10, 74), range(3, 67), range(2, 66))]
    ds = Dataset.from_dict({"prompt": prompts})

    def reward(completions, **kw):
        return [float(len(c) > 0 and c[0].isdigit()) for c in completions]

    with tempfile.TemporaryDirectory() as d:
        args = GRPOConfig(output_dir=d, per_device_train_batch_size=64, num_generations=8, max_completion_length=16,
                          max_steps=steps + 2, learning_rate=1e-4, beta=0.0, logging_steps=1000, save_strategy="no",
                          report_to=[], use_cpu=True, temperature=1.0, gradient_accumulation_steps=1)
        times = []

        from transformers import TrainerCallback

        class Timer(TrainerCallback):
            def on_step_begin(self, a, s, c, **k):
                self.t = time.perf_counter()

            def on_step_end(self, a, s, c, **k):
                times.append(time.perf_counter() - self.t)

        trainer = GRPOTrainer(model=model, reward_funcs=reward, args=args, train_dataset=ds,
                              processing_class=hf_tok, callbacks=[Timer()])
        trainer.train()
    t = sorted(times[2:])
    return t[len(t) // 2] * 1000


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bonfire-bench", default=".build/release/bonfire-bench")
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--threads", type=int, default=1)
    a = ap.parse_args()
    os.environ.setdefault("OPENBLAS_NUM_THREADS", str(a.threads))
    b = bonfire_rate(a.bonfire_bench, a.threads, a.steps)
    try:
        t = trl_rate(a.threads, a.steps)
    except ImportError as e:
        sys.exit(f"TRL not available ({e}); install with: pip install trl transformers datasets tokenizers")
    print(f"RESULT trl_grpo threads={a.threads} ms_per_step={t:.1f} completions_per_s={64 / (t / 1000):.0f}")
    print(f"RESULT ratio bonfire_vs_trl step rate = {t / b:.2f}x (target >= 3x at 1 thread)")


if __name__ == "__main__":
    main()
