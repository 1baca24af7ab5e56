"""Checks the answers a test got from salmap-gateway against its OpenAPI
description: every answer's route, method, status and content type are
documented, every JSON body validates against its schema, and every
operation was answered with success at least once.

    openapi_check.py schemas/openapi.yaml answers.tsv

answers.tsv: a line an answer, "METHOD<TAB>PATH<TAB>STATUS<TAB>CONTENT-TYPE<TAB>BODY-FILE"
(tests/integration/http.sh writes it). Needs Debian's python3-yaml and
python3-jsonschema."""
import json
import re
import sys

import yaml
from jsonschema import Draft202012Validator, RefResolver

spec = yaml.safe_load(open(sys.argv[1]))
resolver = RefResolver.from_schema(spec)
for name, schema in spec["components"]["schemas"].items():
    Draft202012Validator.check_schema(schema)


def deref(o):
    while isinstance(o, dict) and "$ref" in o:
        o = resolver.resolve(o["$ref"])[1]
    return o


routes = []  # (regex, template, METHOD, operation)
for tpl, item in spec["paths"].items():
    # {file} may hold '/': a map's image id is a path
    rx = re.compile("^" + re.sub(r"\{(\w+)\}", lambda m: "(.+)" if m.group(1) == "file"
                                 else "([^/]+)", tpl) + "$")
    for method, op in item.items():
        if method in ("get", "post", "put", "delete", "patch"):
            routes.append((rx, tpl, method.upper(), op))

error_schema = {"$ref": "#/components/schemas/Error"}
failures, answered, n = [], set(), 0


def check_body(where, schema, ctype, body):
    if schema is None:
        return
    if ctype != "application/json":
        failures.append(f"{where}: {ctype}, not JSON")
        return
    try:
        doc = json.loads(body)
    except ValueError as e:
        failures.append(f"{where}: not JSON: {e}")
        return
    errs = sorted(Draft202012Validator(schema, resolver=resolver).iter_errors(doc), key=str)
    for e in errs[:3]:
        failures.append(f"{where}: {'/'.join(map(str, e.path))}: {e.message[:300]}")


for line in open(sys.argv[2]):
    method, path, status, ctype, body_file = line.rstrip("\n").split("\t")
    n += 1
    status, ctype = int(status), ctype.split(";")[0].strip()
    body = open(body_file, "rb").read()
    where = f"{method} {path} -> {status}"
    at_path = [r for r in routes if r[0].match(path)]
    ops = [r for r in at_path if r[2] == method]
    if not ops:  # no such operation: the gateway's 404 or 405
        want = 405 if at_path else 404
        if status != want:
            failures.append(f"{where}: not an operation of the API, expected {want}")
        check_body(where, error_schema, ctype, body)
        continue
    _, tpl, _, op = ops[0]
    responses = op["responses"]
    resp = responses.get(str(status)) or responses.get(f"{status // 100}XX") or responses.get("default")
    if resp is None:
        failures.append(f"{where}: status not documented for {method} {tpl}")
        continue
    content = deref(resp).get("content", {})
    if ctype not in content:
        failures.append(f"{where}: content type {ctype} not documented ({', '.join(content)})")
        continue
    check_body(where, content[ctype].get("schema"), ctype, body)
    if 200 <= status < 300:
        answered.add((method, tpl))

for _, tpl, method, _ in routes:
    if (method, tpl) not in answered:
        failures.append(f"{method} {tpl}: never answered with success by the test")
for f in failures:
    print("openapi: " + f, file=sys.stderr)
print(f"openapi: {n} answers checked against {len(routes)} operations, {len(failures)} failures")
sys.exit(1 if failures else 0)
