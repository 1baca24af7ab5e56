"""Images per second of PyTorch on a TorchScript network (bench/forward.c's
baseline). Usage: torch_forward.py MODEL.pt C H W BATCH THREADS"""
import sys
import time

import torch

path, c, h, w, batch, threads = sys.argv[1], *map(int, sys.argv[2:])
torch.set_num_threads(threads)
model = torch.jit.load(path).eval()
x = torch.rand(batch, c, h, w)
with torch.no_grad():
    model(x)
    runs, t0 = 0, time.perf_counter()
    while True:
        model(x)
        runs += 1
        t = time.perf_counter() - t0
        if t >= 1.0 and runs >= 3:
            break
print(runs * batch / t)
