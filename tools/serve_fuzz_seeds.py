#!/usr/bin/env python3
"""Seed requests for fuzz/fuzz_serve.cc: one raw HTTP/1.1 exchange per file,
for every route of api/openapi.yaml, with the harness's fixed API keys.

    serve_fuzz_seeds.py OUT_DIR JPEG [JPEG2]

JPEG: a real photo (scripts/fuzz.sh passes a small re-encoding of a
../shared photo), sent raw and in multipart forms.
"""
import json
import os
import sys

REC, ENR, ADM = "fuzz-recognize", "fuzz-enroll", "fuzz-admin"


def request(method, path, key=None, body=b"", ctype=None, extra=(), close=True):
    h = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1"]
    if key:
        h.append(f"Authorization: Bearer {key}")
    if ctype:
        h.append(f"Content-Type: {ctype}")
    if body or method in ("POST", "PATCH", "PUT"):
        h.append(f"Content-Length: {len(body)}")
    h.extend(extra)
    if close:
        h.append("Connection: close")
    return ("\r\n".join(h) + "\r\n\r\n").encode() + body


def multipart(fields, boundary="----facerecfuzz7MA4YWxkTrZu0gW"):
    out = b""
    for name, (filename, ctype, data) in fields.items():
        out += f"--{boundary}\r\n".encode()
        out += f'Content-Disposition: form-data; name="{name}"; filename="{filename}"\r\n'.encode()
        out += f"Content-Type: {ctype}\r\n\r\n".encode() + data + b"\r\n"
    out += f"--{boundary}--\r\n".encode()
    return out, f"multipart/form-data; boundary={boundary}"


def main():
    out, jpeg_path = sys.argv[1], sys.argv[2]
    jpeg = open(jpeg_path, "rb").read()
    jpeg2 = open(sys.argv[3], "rb").read() if len(sys.argv) > 3 else jpeg
    os.makedirs(out, exist_ok=True)
    seeds = {}
    # The page (no key) and the service's own routes.
    seeds["web_index"] = request("GET", "/")
    seeds["web_app_js"] = request("GET", "/app.js")
    seeds["web_head"] = request("HEAD", "/index.html")
    seeds["web_traversal"] = request("GET", "/../../etc/passwd")
    seeds["health"] = request("GET", "/v1/health")
    seeds["metrics_admin"] = request("GET", "/metrics", ADM)
    seeds["people_list"] = request("GET", "/v1/people", ENR)
    # identify: raw body, query parameters, multipart.
    seeds["identify_raw"] = request("POST", "/v1/identify?top_k=3&threshold=0.5", REC, jpeg, "image/jpeg")
    seeds["identify_fpir"] = request("POST", "/v1/identify?fpir=0.01", REC, jpeg, "application/octet-stream")
    body, ct = multipart({"image": ("probe.jpg", "image/jpeg", jpeg)})
    seeds["identify_multipart"] = request("POST", "/v1/identify", REC, body, ct)
    body, ct = multipart({"image1": ("a.jpg", "image/jpeg", jpeg), "image2": ("b.jpg", "image/jpeg", jpeg2)})
    seeds["verify_multipart"] = request("POST", "/v1/verify", REC, body, ct)
    seeds["detect_raw"] = request("POST", "/v1/detect", REC, jpeg, "image/jpeg")
    # enrolment and the people routes.
    seeds["enroll_raw"] = request("POST", "/v1/people/Carol/faces", ENR, jpeg, "image/jpeg")
    body, ct = multipart({"image": ("c.jpg", "image/jpeg", jpeg2)})
    seeds["enroll_multipart_utf8"] = request("POST", "/v1/people/Jos%C3%A9/faces", ENR, body, ct)
    seeds["rename"] = request("PATCH", "/v1/people/Bob", ENR, json.dumps({"name": "Robert"}).encode(),
                              "application/json")
    seeds["remove"] = request("DELETE", "/v1/people/Alice", ENR)
    # Auth failures: no key, an unknown key, a role too low.
    seeds["no_key"] = request("POST", "/v1/identify", None, jpeg, "image/jpeg")
    seeds["bad_key"] = request("GET", "/v1/people", "not-a-key")
    seeds["low_role"] = request("DELETE", "/v1/people/Bob", REC)
    # Transfer forms: keep-alive pipelining, Expect: 100-continue, chunked.
    seeds["pipelined"] = (request("GET", "/v1/health", close=False) +
                          request("GET", "/v1/people", ENR, close=False) + request("GET", "/metrics", ADM))
    seeds["expect_continue"] = request("POST", "/v1/detect", REC, jpeg, "image/jpeg", ["Expect: 100-continue"])
    chunked = b"".join(b"%x\r\n" % len(jpeg[i:i + 4096]) + jpeg[i:i + 4096] + b"\r\n"
                       for i in range(0, len(jpeg), 4096)) + b"0\r\n\r\n"
    seeds["chunked"] = ("POST /v1/identify HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + REC +
                        "\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n").encode() + chunked
    for name, data in seeds.items():
        with open(os.path.join(out, name), "wb") as f:
            f.write(data)
    print(f"{len(seeds)} serve seeds in {out}")


if __name__ == "__main__":
    main()
