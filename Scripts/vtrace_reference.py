#!/usr/bin/env python3
"""NumPy reference for V-trace (Espeholt et al. 2018, IMPALA, eq. 1) with episode boundaries inside a chunk.

Writes Tests/BonfireAlgorithmsTests/Fixtures/vtrace_offpolicy.json: inputs and expected outputs for off-policy
chunks (behaviour policy != target policy) that contain terminations and a truncation.

Unlike Sources/BonfireAlgorithms/VTrace.swift (a backward recursion), this uses the explicit sum form:
    v_s = V(x_s) + sum_{t=s}^{e} gamma^{t-s} (prod_{i=s}^{t-1} c_i) delta_t
    delta_t = rho_t (r_t + gamma * V+_t - V(x_t)),  V+_t = 0 if done_t else next_values[t]
where e is the last step of the episode segment that contains s (a step with done or truncated, or the chunk end).
    A_t = rho_t (r_t + gamma q_t - V(x_t)),  q_t = 0 if done_t, next_values[t] if truncated_t or t = T-1, else v_{t+1}
Usage: python3 Scripts/vtrace_reference.py   (deterministic: seeded)
"""
import json
import os

import numpy as np


def vtrace(target_lp, behaviour_lp, rewards, values, next_values, dones, truncs, gamma, rho_bar, c_bar, lam):
    T = len(rewards)
    ratio = np.exp(target_lp - behaviour_lp)
    rho = np.minimum(rho_bar, ratio)
    c = lam * np.minimum(c_bar, ratio)
    v_next = np.where(dones, 0.0, next_values)
    delta = rho * (rewards + gamma * v_next - values)
    ends = np.logical_or(dones, truncs)
    ends[-1] = True
    vs = np.zeros(T)
    for s in range(T):
        e = s
        while not ends[e]:
            e += 1
        total, coef = 0.0, 1.0
        for t in range(s, e + 1):
            total += coef * delta[t]
            coef *= gamma * c[t]
        vs[s] = values[s] + total
    q = np.zeros(T)
    for t in range(T):
        if dones[t]:
            q[t] = 0.0
        elif truncs[t] or t == T - 1:
            q[t] = next_values[t]
        else:
            q[t] = vs[t + 1]
    adv = rho * (rewards + gamma * q - values)
    return vs, adv


def make_case(rng, T, gamma, rho_bar, c_bar, lam, done_at, trunc_at):
    target_lp = np.log(rng.uniform(0.05, 1.0, T))
    behaviour_lp = np.log(rng.uniform(0.05, 1.0, T))
    rewards = rng.normal(0, 1, T)
    values = rng.normal(0, 1, T)
    dones = np.zeros(T, dtype=bool)
    truncs = np.zeros(T, dtype=bool)
    dones[list(done_at)] = True
    truncs[list(trunc_at)] = True
    # next_values[t] = V(x_{t+1}): values[t+1] inside an episode, V(final obs) at a truncation,
    # anything at a termination (ignored), the bootstrap value at the chunk end.
    next_values = np.append(values[1:], rng.normal(0, 1))
    for t in trunc_at:
        next_values[t] = rng.normal(0, 1)
    for t in done_at:
        next_values[t] = 123.0  # must be ignored
    vs, adv = vtrace(target_lp, behaviour_lp, rewards, values, next_values, dones, truncs, gamma, rho_bar, c_bar, lam)
    return {
        "gamma": gamma, "rhoBar": rho_bar, "cBar": c_bar, "lambda": lam,
        "targetLogProbs": target_lp.tolist(), "behaviourLogProbs": behaviour_lp.tolist(),
        "rewards": rewards.tolist(), "values": values.tolist(), "nextValues": next_values.tolist(),
        "dones": dones.tolist(), "truncations": truncs.tolist(),
        "vs": vs.tolist(), "pgAdvantages": adv.tolist(),
    }


def main():
    rng = np.random.default_rng(20180205)
    cases = [
        make_case(rng, 12, 0.9, 1.0, 1.0, 1.0, done_at=[3], trunc_at=[7]),
        make_case(rng, 16, 0.99, 2.0, 0.5, 0.95, done_at=[5, 6], trunc_at=[11]),
        make_case(rng, 10, 0.97, 1.0, 1.0, 1.0, done_at=[], trunc_at=[]),
        make_case(rng, 8, 0.9, 1.0, 1.0, 1.0, done_at=[7], trunc_at=[]),
    ]
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    out = os.path.join(root, "Tests", "BonfireAlgorithmsTests", "Fixtures", "vtrace_offpolicy.json")
    with open(out, "w") as f:
        json.dump({"source": "Scripts/vtrace_reference.py (NumPy " + np.__version__ + ")", "cases": cases}, f, indent=1)
    print("wrote", out, "cases:", len(cases))


if __name__ == "__main__":
    main()
