"""Client, Job and SalmapError (see the package's docstring)."""
import base64
import io
import json
import os
import re
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

import numpy as np

_HASH = re.compile(r"^[0-9a-f]{64}$")


class SalmapError(Exception):
    """A refusal of the gateway: status (HTTP), code and message."""

    def __init__(self, status, code, message):
        super().__init__(f"{status} {code}: {message}")
        self.status, self.code, self.message = status, code, message


def _npy(data):
    return np.load(io.BytesIO(data), allow_pickle=False)


class Client:
    """A gateway at url (e.g. "http://127.0.0.1:8080"), with its bearer
    token when it needs one; timeout: seconds a request may take."""

    def __init__(self, url, token=None, timeout=120):
        self.url = url.rstrip("/")
        self.token = token
        self.timeout = timeout
        self._hashes = {}  # model file -> its hash, uploaded once

    def _call(self, method, path, body=None, content_type=None, raw=False):
        req = urllib.request.Request(self.url + path, data=body, method=method)
        if content_type:
            req.add_header("Content-Type", content_type)
        if self.token:
            req.add_header("Authorization", "Bearer " + self.token)
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as r:
                data = r.read()
        except urllib.error.HTTPError as e:
            text = e.read()
            try:
                err = json.loads(text)["error"]
                raise SalmapError(e.code, err["code"], err["message"]) from None
            except (ValueError, KeyError, TypeError):
                raise SalmapError(e.code, "http", text[:200].decode("utf-8", "replace")) from None
        return data if raw else json.loads(data)

    def _json(self, method, path, doc):
        return self._call(method, path, json.dumps(doc).encode(), "application/json")

    def upload_model(self, model):
        """The hash of model: a file's path or its bytes, uploaded once;
        a hash is returned as it is."""
        if isinstance(model, str) and _HASH.match(model):
            return model
        if isinstance(model, (bytes, bytearray)):
            return self._call("POST", "/v1/models", bytes(model), "application/octet-stream")["hash"]
        if model not in self._hashes:
            with open(model, "rb") as f:
                data = f.read()
            self._hashes[model] = self._call("POST", "/v1/models", data,
                                             "application/octet-stream")["hash"]
        return self._hashes[model]

    def _job_doc(self, job):
        doc = dict(job)
        doc["model"] = self.upload_model(doc["model"])
        if "models" in doc:
            doc["models"] = {k: self.upload_model(v) for k, v in doc["models"].items()}
        cfg = doc.get("config")
        if cfg and "\n" not in cfg and os.path.isfile(cfg):
            with open(cfg) as f:  # a config file's name: its text goes
                doc["config"] = f.read()
        return doc

    def submit(self, job):
        """Submits a job document (the keys of a job file, docs/API.md);
        "model" and "models" may name files, "config" a YAML file (else it
        is the YAML text). Returns its Job."""
        st = self._json("POST", "/v1/jobs", self._job_doc(job))
        return Job(self, st["id"])

    def jobs(self):
        """Every job's status, in submission order."""
        return self._call("GET", "/v1/jobs")["jobs"]

    def workers(self):
        """{"workers": [...], "faults": [...]}: the broker's workers with
        the tasks they hold, and its latest faults (docs/API.md)."""
        return self._call("GET", "/v1/workers")

    def job(self, job_id):
        return Job(self, job_id)

    def explain(self, image, methods, model, **job):
        """Explains one image (a file's path or its bytes) with methods,
        waiting for the answer: {method: numpy array}. Other job keys
        (seed, target, params, ...) may follow."""
        if not isinstance(image, (bytes, bytearray)):
            with open(image, "rb") as f:
                image = f.read()
        doc = self._job_doc(dict(job, model=model, methods=list(methods),
                                 image=base64.b64encode(image).decode()))
        r = self._json("POST", "/v1/explain", doc)
        return {m: _npy(base64.b64decode(s)) for m, s in r["maps"].items()}


class Job:
    """A job of the gateway's broker."""

    def __init__(self, client, job_id):
        self.client, self.id = client, job_id

    def __repr__(self):
        return f"Job({self.id!r})"

    def status(self):
        return self.client._call("GET", f"/v1/jobs/{self.id}")

    def cancel(self):
        return self.client._call("POST", f"/v1/jobs/{self.id}/cancel")

    def delete(self):
        """Makes the broker forget this ended job and remove the files it
        wrote; SalmapError 409 job_running while it runs."""
        return self.client._call("DELETE", f"/v1/jobs/{self.id}")

    def wait(self, progress=False, poll=0.5, timeout=None):
        """Polls until the job ended (its last status), printing a progress
        line on stderr when asked; TimeoutError after timeout seconds."""
        end = None if timeout is None else time.monotonic() + timeout
        while True:
            st = self.status()
            if progress:
                m = st["maps"]
                eta = st["eta_seconds"]
                sys.stderr.write(f"\r{self.id} {st['state']}: {m['done']}/{m['total']} maps"
                                 f" ({m['failed']} failed), {st['rate']:.1f}/s"
                                 + (f", ETA {eta:.0f} s" if eta else "") + "   ")
                sys.stderr.flush()
            if st["state"] not in ("queued", "running"):
                if progress:
                    sys.stderr.write("\n")
                return st
            if end is not None and time.monotonic() > end:
                raise TimeoutError(f"job {self.id}: still {st['state']} after {timeout} s")
            time.sleep(poll)

    def files(self):
        """The finished maps' files: [{"path", "bytes"}], paths relative to maps/."""
        return self.client._call("GET", f"/v1/jobs/{self.id}/maps")["files"]

    def file(self, path):
        """One file's bytes, path as files() lists it."""
        return self.client._call("GET", f"/v1/jobs/{self.id}/maps/"
                                 + urllib.parse.quote(path, safe="/"), raw=True)

    def index(self):
        return self.client._call("GET", f"/v1/jobs/{self.id}/index.csv", raw=True).decode()

    def maps(self):
        """{(image id, method): numpy array} of every finished map."""
        out = {}
        for f in self.files():
            image, _, name = f["path"].rpartition("/")
            if name.endswith(".npy") and name.count(".") == 1:
                out[(image, name[:-4])] = _npy(self.file(f["path"]))
        return out
