"""Client of salmap-gateway, salmap's HTTP/JSON API (docs/API.md).

    from salmap import Client
    c = Client("http://127.0.0.1:8080", token=None)
    job = c.submit({"model": "models/mnist_cnn.onnx", "dataset": "data/mnist/test",
                    "limit": 6, "methods": ["sal", "grad"]})
    job.wait(progress=True)
    maps = job.maps()           # {("0/0_0004", "sal"): numpy array, ...}
    sal = c.explain("digit.png", methods=["sal"], model="models/mnist_cnn.onnx")["sal"]

Standard library and numpy only. Every refusal of the gateway raises
SalmapError with its HTTP status, code and message.
"""
from .client import Client, Job, SalmapError

__all__ = ["Client", "Job", "SalmapError"]
