#!/usr/bin/env python3
"""IRR's per-matrix step (IRR-SPEC step 3.3, method irr) written in PyTorch the way the SparseGPT-based
reference does it, to time against `Irr.Bench obs` in the same sitting, and (with --fixture) to write a
small input/output pair for tests/fixtures/torch/obs_reference.json.

Usage: python3 bench/torch/obs_reference.py time [N] [--reps R] [--threads T]
       python3 bench/torch/obs_reference.py fixture > tests/fixtures/torch/obs_reference.json
Needs Debian's python3-torch (CPU).
"""
import json, os, sys, time
import torch


def irr_matrix(W, H, V, F, blocksize=128, percdamp=0.01, sparsity=0.0):
    """Δ (rows × cols) → edited Δ; H (cols × cols); V, F like W. float32 throughout, as the reference."""
    W = W.clone()
    H = H.clone()
    rows, cols = W.shape
    dead = torch.diag(H) == 0
    H[dead, dead] = 1
    W[:, dead] = 0
    damp = percdamp * torch.mean(torch.diag(H))
    diag = torch.arange(cols)
    H[diag, diag] += damp
    H = torch.linalg.cholesky(H)
    H = torch.cholesky_inverse(H)
    Hinv = torch.linalg.cholesky(H, upper=True)
    for i1 in range(0, cols, blocksize):
        i2 = min(i1 + blocksize, cols)
        count = i2 - i1
        W1 = W[:, i1:i2].clone()
        Q1 = torch.zeros_like(W1)
        Err1 = torch.zeros_like(W1)
        Hinv1 = Hinv[i1:i2, i1:i2]
        # The removal mask from the block's current (compensated) values: conflicts, minus the
        # floor(|C|*s) with the lowest Fisher (stable: row-major position breaks ties).
        conflict = torch.sign(W1) != torch.sign(V[:, i1:i2])
        mask1 = conflict.clone()
        positions = conflict.nonzero()  # row-major
        keep = int(positions.shape[0] * sparsity)
        if keep > 0:
            f = F[:, i1:i2][conflict]
            kept = positions[torch.sort(f, stable=True).indices[:keep]]
            mask1[kept[:, 0], kept[:, 1]] = False
        for i in range(count):
            w = W1[:, i]
            d = Hinv1[i, i]
            q = w.clone()
            q[mask1[:, i]] = 0
            Q1[:, i] = q
            err1 = (w - q) / d
            W1[:, i:] -= err1.unsqueeze(1).matmul(Hinv1[i, i:].unsqueeze(0))
            Err1[:, i] = err1
        W[:, i1:i2] = Q1
        W[:, i2:] -= Err1.matmul(Hinv[i1:i2, i2:])
    return W


def problem(rows, cols, tokens, seed):
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(tokens, cols, generator=g)
    H = 2 * X.t() @ X / tokens
    W = torch.randn(rows, cols, generator=g) * 0.01
    V = torch.randn(rows, cols, generator=g)
    F = torch.rand(rows, cols, generator=g)
    return H, W, V, F


def main():
    # Debian's build starts with one OpenMP thread; --threads T sets it (on this VM 1 is faster than 2).
    torch.set_num_threads(int(sys.argv[sys.argv.index("--threads") + 1]) if "--threads" in sys.argv else 1)
    mode = sys.argv[1] if len(sys.argv) > 1 else "time"
    if mode == "time":
        n = int(sys.argv[2]) if len(sys.argv) > 2 and sys.argv[2].isdigit() else 4096
        reps = int(sys.argv[sys.argv.index("--reps") + 1]) if "--reps" in sys.argv else 3
        H, W, V, F = problem(n, n, 2 * n, 1)
        irr_matrix(W, H, V, F)  # warm-up
        best = float("inf")
        for _ in range(reps):
            t = time.perf_counter()
            irr_matrix(W, H, V, F)
            best = min(best, time.perf_counter() - t)
        print(f"torch-obs n={n} blocksize=128 threads={torch.get_num_threads()} seconds={best:.3f}")
    elif mode == "fixture":
        rows, cols, bs, s = 48, 80, 32, 0.25
        H, W, V, F = problem(rows, cols, 160, 20261122)
        H[7, :] = 0
        H[:, 7] = 0  # a dead input column
        out = irr_matrix(W, H, V, F, blocksize=bs, percdamp=0.01, sparsity=s)
        flat = lambda t: [float(x) for x in t.flatten().tolist()]
        print(json.dumps({
            "source": "bench/torch/obs_reference.py fixture, torch " + torch.__version__,
            "rows": rows, "cols": cols, "blocksize": bs, "percdamp": 0.01, "sparsity": s,
            "H": flat(H), "delta": flat(W), "v": flat(V), "fisher": flat(F), "expected": flat(out),
        }))
    else:
        sys.exit("usage: obs_reference.py time [N] [--reps R] | fixture")


if __name__ == "__main__":
    main()
