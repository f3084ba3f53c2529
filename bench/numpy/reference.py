#!/usr/bin/env python3
"""Side-by-side reference for bench/Irr.Bench: OpenBLAS through numpy, float32.

Usage: python3 bench/numpy/reference.py gemm N [N ...]
       python3 bench/numpy/reference.py cholesky N [N ...]

Prints lines in the same format as Irr.Bench so the two can be compared directly:
  numpy-gemm n=N threads=T gflops=X
  numpy-cholesky n=N seconds=X      (cholesky(H) -> inv(H) -> cholesky(H^-1), the SparseGPT chain)
  numpy-cholesky-tri n=N seconds=X  (cholesky(H) -> inv(L) -> L^-T L^-1 -> cholesky, via the factor)
Each figure is the best of several repetitions after a warm-up, like Irr.Bench.
"""
import os, sys, time
import numpy as np

def best_of(fn, reps):
    fn()  # warm-up
    best = float("inf")
    for _ in range(reps):
        t = time.perf_counter(); fn(); best = min(best, time.perf_counter() - t)
    return best

def threads():
    try:
        from threadpoolctl import threadpool_info  # optional
        return max(i["num_threads"] for i in threadpool_info())
    except Exception:
        return int(os.environ.get("OPENBLAS_NUM_THREADS", os.cpu_count()))

def spd(n, rng):
    # Same construction as Irr.Bench: H = X^T X / m + 0.01 I with X (2n x n) standard normal.
    x = rng.standard_normal((2 * n, n), dtype=np.float32)
    h = (x.T @ x) / np.float32(2 * n)
    h += np.float32(0.01) * np.eye(n, dtype=np.float32)
    return h

def main():
    what, sizes = sys.argv[1], [int(s) for s in sys.argv[2:]]
    rng = np.random.default_rng(1234)
    for n in sizes:
        if what == "gemm":
            a = rng.standard_normal((n, n), dtype=np.float32)
            b = rng.standard_normal((n, n), dtype=np.float32)
            c = np.empty((n, n), dtype=np.float32)
            reps = 10 if n <= 1024 else 5 if n <= 2048 else 3
            # C = A @ B^T, the Linear-layer form (y = x W^T) that Irr.Bench times.
            s = best_of(lambda: np.matmul(a, b.T, out=c), reps)
            print(f"numpy-gemm n={n} threads={threads()} gflops={2.0 * n**3 / s / 1e9:.1f}", flush=True)
        elif what == "cholesky":
            h = spd(n, rng)
            reps = 5 if n <= 2048 else 3
            def chain():
                np.linalg.cholesky(h)
                hinv = np.linalg.inv(h)
                return np.linalg.cholesky(hinv).T
            def chain_tri():
                l = np.linalg.cholesky(h)
                linv = np.linalg.inv(l)
                hinv = linv.T @ linv
                return np.linalg.cholesky(hinv).T
            print(f"numpy-cholesky n={n} seconds={best_of(chain, reps):.3f}", flush=True)
            print(f"numpy-cholesky-tri n={n} seconds={best_of(chain_tri, reps):.3f}", flush=True)
        else:
            sys.exit(f"unknown benchmark '{what}' (expected gemm or cholesky)")

if __name__ == "__main__":
    main()
