#!/usr/bin/env python3
"""Reference for BENCHMARKS.md: numpy (OpenBLAS) sgemm at the matmul bench's shapes,
y = x @ w.T + b with x [M,K], w [N,K] float32, median of repeated runs, in GFLOP/s.
Run in the same sitting as `cargo bench --bench kernels`:  python3 benches/numpy_sgemm.py"""
import time, statistics, numpy as np

try:
    from threadpoolctl import threadpool_info
    info = threadpool_info()
except Exception:
    info = "threadpoolctl not installed"
print("numpy", np.__version__, info)
rng = np.random.default_rng(0)
M = 4096
for K, N in [(768, 768), (768, 3072), (3072, 768)]:
    x = rng.standard_normal((M, K), dtype=np.float32)
    w = rng.standard_normal((N, K), dtype=np.float32)
    b = rng.standard_normal(N, dtype=np.float32)
    y = x @ w.T + b  # warm-up
    times = []
    for _ in range(10):
        t0 = time.perf_counter()
        y = x @ w.T + b
        times.append(time.perf_counter() - t0)
    med = statistics.median(times)
    print(f"numpy sgemm M={M} K={K} N={N}: median {med*1e3:.1f} ms, {2*M*N*K/med/1e9:.1f} GFLOP/s")
