"""Independent numpy (float64) references for every scoring, written out by hand."""

import math

import numpy as np


def logits(name: str, q: np.ndarray, k: np.ndarray, p: dict) -> np.ndarray:
    """q: [b, lq, h, d], k: [b, lk, h, d] -> [b, h, lq, lk] by explicit loops over i, j."""
    b, lq, h, d = q.shape
    lk = k.shape[1]
    out = np.zeros((b, h, lq, lk))
    q_prev = np.concatenate([np.zeros_like(q[:, :1]), q[:, :-1]], axis=1)
    k_prev = np.concatenate([np.zeros_like(k[:, :1]), k[:, :-1]], axis=1)
    for bb in range(b):
        for hh in range(h):
            for i in range(lq):
                for j in range(lk):
                    qi, kj = q[bb, i, hh], k[bb, j, hh]
                    if name == "dot":
                        s = qi @ kj / math.sqrt(d)
                    elif name == "cosine":
                        s = p["tau"][hh] * (qi @ kj) / (np.linalg.norm(qi) * np.linalg.norm(kj))
                    elif name == "l2":
                        s = -np.sum((qi - kj) ** 2) / math.sqrt(d)
                    elif name == "l1":
                        s = -np.sum(np.abs(qi - kj)) / math.sqrt(d)
                    elif name == "differential":
                        s = (qi @ kj - q_prev[bb, i, hh] @ k_prev[bb, j, hh]) / math.sqrt(d)
                    elif name == "general":
                        s = qi @ p["w"][hh] @ kj
                    elif name == "additive":
                        s = p["v"][hh] @ np.tanh(qi @ p["w_q"][hh] + kj @ p["w_k"][hh])
                    elif name == "diff-transformer":
                        half = d // 2
                        sc = 1 / math.sqrt(half)
                        lam = diff_lambda(p)
                        s = (qi[:half] @ kj[:half]) * sc - lam * (qi[half:] @ kj[half:]) * sc
                    else:
                        raise KeyError(name)
                    out[bb, hh, i, j] = s
    return out


def diff_lambda_init(depth: int) -> float:
    """Ye et al. 2024: λ_init = 0.8 − 0.6·exp(−0.3·(l − 1)), ``l`` counted from 1."""
    return 0.8 - 0.6 * math.exp(-0.3 * (depth - 1))


def diff_lambda(p: dict) -> float:
    """λ = exp(λ_q1·λ_k1) − exp(λ_q2·λ_k2) + λ_init, in float64."""
    return (
        math.exp(float(np.dot(p["lambda_q1"], p["lambda_k1"])))
        - math.exp(float(np.dot(p["lambda_q2"], p["lambda_k2"])))
        + diff_lambda_init(p["depth"])
    )


def softmax(x: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Softmax over unmasked keys; a fully masked row is all zeros."""
    x = np.where(mask, x, -np.inf)
    m = np.max(x, axis=-1, keepdims=True)
    m = np.where(np.isfinite(m), m, 0.0)
    e = np.where(mask, np.exp(x - m), 0.0)
    s = e.sum(-1, keepdims=True)
    return np.divide(e, s, out=np.zeros_like(e), where=s > 0)


def attention(name: str, q, k, v, mask, p: dict) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Returns (logits, weights, out [b, lq, h, d])."""
    q, k, v = (np.asarray(a, np.float64) for a in (q, k, v))
    mask = np.broadcast_to(mask, (q.shape[0], q.shape[2], q.shape[1], k.shape[1]))
    lg = logits(name, q, k, p)
    if name == "diff-transformer":
        d = q.shape[-1]
        half = d // 2
        sc = 1 / math.sqrt(half)
        a = np.einsum("bqhd,bkhd->bhqk", q[..., :half], k[..., :half]) * sc
        b = np.einsum("bqhd,bkhd->bhqk", q[..., half:], k[..., half:]) * sc
        w = softmax(a, mask) - diff_lambda(p) * softmax(b, mask)
    else:
        w = softmax(lg, mask)
    out = np.einsum("bhqk,bkhd->bqhd", w, v)
    if name == "diff-transformer":
        # Per-head RMSNorm over the head's width (eps 1e-5), then × (1 − λ_init).
        rms = np.sqrt(np.mean(out**2, axis=-1, keepdims=True) + 1e-5)
        out = out / rms * p["norm_gain"] * (1 - diff_lambda_init(p["depth"]))
    return lg, w, out
