"""Latency of POST /v1/explain (docs/API.md) under load: N requests of one
inline MNIST image each, C at a time, against a running salmap-gateway;
prints p50, p90, p99, mean and throughput. bench/http_latency.sh starts
the broker, workers and gateway and runs it.

    http_latency.py URL MODEL_HASH METHOD N CONCURRENCY IMAGE..."""
import json
import statistics
import sys
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor

url, model, method, n, conc = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
images = [open(p, "rb").read() for p in sys.argv[6:]]


def one(k):
    req = urllib.request.Request(f"{url}/v1/explain?model={model}&methods={method}",
                                 data=images[k % len(images)], method="POST",
                                 headers={"Content-Type": "image/png"})
    t0 = time.perf_counter()
    with urllib.request.urlopen(req, timeout=600) as r:
        doc = json.loads(r.read())
    assert method in doc["maps"], doc
    return time.perf_counter() - t0


one(0)  # warm-up: the workers load the model
t0 = time.perf_counter()
with ThreadPoolExecutor(conc) as pool:
    lat = sorted(pool.map(one, range(n)))
wall = time.perf_counter() - t0
q = lambda p: lat[min(len(lat) - 1, int(p * len(lat)))]
print(f"{method}: {n} requests, {conc} concurrent: p50 {q(0.5) * 1000:.0f} ms, "
      f"p90 {q(0.9) * 1000:.0f} ms, p99 {q(0.99) * 1000:.0f} ms, "
      f"mean {statistics.mean(lat) * 1000:.0f} ms, {n / wall:.1f} requests/s")
