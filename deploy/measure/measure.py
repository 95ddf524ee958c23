#!/usr/bin/env python3
"""Peak memory and duration of each Lambda function, for template.yaml's sizing.

    deploy/measure/measure.py [--bin-dir target/release] [--rounds 20]

Runs every function's real binary as Lambda would: a process started with
AWS_LAMBDA_RUNTIME_API pointing at a minimal Runtime API implemented here
(next / response / error / init error), warm across invocations. Measured
per function:
- init: process start until its first `GET .../invocation/next` (Lambda's
  "Init Duration");
- duration of each invocation: the `next` answer handed out until the
  `response`/`error` POST arrived (Lambda's "Duration");
- peak RSS: VmHWM of /proc/<pid>/status after the last invocation (Lambda's
  "Max Memory Used" is the same high-water mark of the sandbox).

Back ends: the Kubernetes handlers talk HTTPS with an EKS-style token to
deploy/measure's test API server (selfheal-measure-server: selfheal-testserver
with the checkout Deployment), so they run their EKS code path (SDK
credentials, presigned token, TLS with the cluster CA); notify, approve and
ingest talk to moto_server (.venv) via AWS_ENDPOINT_URL. Each round: a bad
image is rolled out, then rollback, verify until done, pause, resume,
restart; notify an approval request and a completion; approve opens (GET) the
link notify minted; ingest turns a CloudWatch alarm into a StartExecution.
Every answer is checked (status applied, verify done, ...): a broken run
fails instead of measuring error paths. Prints a table and writes JSON
(--json). Needs the release binaries (`cargo build --release --bins -p ...`)
and selfheal-measure-server (`cargo build --release` in deploy/measure).
"""

from __future__ import annotations

import argparse
import json
import os
import queue
import shutil
import signal
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

ROOT = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
REGION = "us-east-1"
ACCOUNT = "123456789012"
KUBE_HANDLERS = ["rollback", "verify", "pause", "resume", "restart"]
AWS_FUNCTIONS = ["notify", "approve", "ingest"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class RuntimeApi:
    """The Lambda Runtime API for one function process."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.events: queue.Queue[tuple[str, bytes]] = queue.Queue()
        self.results: dict[str, queue.Queue] = {}
        self.first_next: float | None = None
        self.init_error: bytes | None = None
        self.dispatched: dict[str, float] = {}
        api = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args) -> None:  # quiet
                pass

            def _body(self) -> bytes:
                n = int(self.headers.get("Content-Length") or 0)
                return self.rfile.read(n) if n else b""

            def _reply(self, code: int, body: bytes = b"{}", headers: dict | None = None) -> None:
                self.send_response(code)
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self) -> None:
                if not self.path.endswith("/runtime/invocation/next"):
                    return self._reply(404)
                if api.first_next is None:
                    api.first_next = time.monotonic()
                request_id, payload = api.events.get()
                api.dispatched[request_id] = time.monotonic()
                deadline = int((time.time() + 900) * 1000)
                self._reply(
                    200,
                    payload,
                    {
                        "Lambda-Runtime-Aws-Request-Id": request_id,
                        "Lambda-Runtime-Deadline-Ms": str(deadline),
                        "Lambda-Runtime-Invoked-Function-Arn": f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{api.name}",
                        "Lambda-Runtime-Trace-Id": f"Root=1-{uuid.uuid4().hex[:8]}-{uuid.uuid4().hex[:24]};Sampled=0",
                    },
                )

            def do_POST(self) -> None:
                body = self._body()
                parts = self.path.split("/")
                if self.path.endswith("/runtime/init/error"):
                    api.init_error = body
                    return self._reply(202)
                if len(parts) >= 6 and parts[-1] in ("response", "error"):
                    request_id = parts[-2]
                    end = time.monotonic()
                    start = api.dispatched.get(request_id, end)
                    api.results[request_id].put((parts[-1], body, end - start))
                    return self._reply(202)
                self._reply(404)

        self.port = free_port()
        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def invoke(self, payload: dict, timeout: float = 60) -> tuple[str, dict, float]:
        request_id = str(uuid.uuid4())
        self.results[request_id] = queue.Queue()
        self.events.put((request_id, json.dumps(payload).encode()))
        try:
            kind, body, duration = self.results[request_id].get(timeout=timeout)
        except queue.Empty:
            raise RuntimeError(f"{self.name}: no answer within {timeout} s (init error: {self.init_error!r})") from None
        return kind, json.loads(body or b"null"), duration


class Function:
    """One warm function process and its measurements."""

    def __init__(self, name: str, binary: str, env: dict[str, str], log_dir: str) -> None:
        self.name = name
        self.api = RuntimeApi(name)
        self.durations: list[float] = []
        full_env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "AWS_LAMBDA_RUNTIME_API": f"127.0.0.1:{self.api.port}",
            "AWS_LAMBDA_FUNCTION_NAME": name,
            "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "256",
            "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{name}",
            "AWS_LAMBDA_LOG_STREAM_NAME": "measure",
            "AWS_LAMBDA_LOG_FORMAT": "JSON",
            "AWS_REGION": REGION,
            "AWS_DEFAULT_REGION": REGION,
            "AWS_ACCESS_KEY_ID": "ASIAMEASUREMEASURE00",
            "AWS_SECRET_ACCESS_KEY": "measure-secret-access-key-measure-secret",
            "AWS_SESSION_TOKEN": "measure-session-token",
            "RUST_LOG": "info",
            **env,
        }
        self.log = open(os.path.join(log_dir, f"{name}.log"), "wb")
        self.started = time.monotonic()
        self.proc = subprocess.Popen([binary], env=full_env, stdout=self.log, stderr=subprocess.STDOUT)

    def wait_init(self, timeout: float = 30) -> float:
        end = time.monotonic() + timeout
        while self.api.first_next is None:
            if self.proc.poll() is not None or time.monotonic() > end:
                raise RuntimeError(f"{self.name}: did not reach the Runtime API (exit {self.proc.poll()}), see its log")
            time.sleep(0.005)
        self.init = self.api.first_next - self.started
        return self.init

    def ok(self, payload: dict) -> dict:
        kind, body, duration = self.api.invoke(payload)
        if kind != "response":
            raise RuntimeError(f"{self.name}: error {body} for {json.dumps(payload)[:300]}")
        self.durations.append(duration)
        return body

    def vm(self, key: str) -> int:
        with open(f"/proc/{self.proc.pid}/status", encoding="ascii") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])  # kB
        return 0

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.api.server.shutdown()
        self.log.close()


class Kube:
    """Admin access to the test API server (set bad images, read status)."""

    def __init__(self, url: str, token: str, ca_file: str) -> None:
        self.url, self.token = url, token
        self.ctx = ssl.create_default_context(cafile=ca_file)

    def call(self, method: str, path: str, body: dict | None = None, ctype: str = "application/json") -> dict:
        req = urllib.request.Request(self.url + path, method=method, data=json.dumps(body).encode() if body else None)
        req.add_header("Authorization", f"Bearer {self.token}")
        req.add_header("Content-Type", ctype)
        with urllib.request.urlopen(req, context=self.ctx, timeout=10) as r:
            return json.loads(r.read())

    def deployment(self) -> dict:
        return self.call("GET", "/apis/apps/v1/namespaces/shop/deployments/checkout")

    def set_api_image(self, image: str) -> None:
        patch = {"spec": {"template": {"spec": {"containers": [{"name": "api", "image": image}]}}}}
        self.call(
            "PATCH",
            "/apis/apps/v1/namespaces/shop/deployments/checkout",
            patch,
            "application/strategic-merge-patch+json",
        )

    def wait_rolled_out(self, timeout: float = 30) -> None:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            d = self.deployment()
            s, spec = d.get("status", {}), d["spec"]
            if (
                s.get("observedGeneration") == d["metadata"].get("generation")
                and s.get("updatedReplicas") == spec["replicas"]
                and s.get("availableReplicas") == spec["replicas"]
                and s.get("replicas") == spec["replicas"]
            ):
                return
            time.sleep(0.05)
        raise RuntimeError(f"checkout did not finish rolling out: {d.get('status')}")


def aws(service: str, target: str, body: dict, endpoint: str, json_version: str = "1.0") -> dict:
    """A JSON-protocol AWS call to moto (no SDK needed)."""
    req = urllib.request.Request(endpoint + "/", method="POST", data=json.dumps(body).encode())
    req.add_header("Content-Type", f"application/x-amz-json-{json_version}")
    req.add_header("X-Amz-Target", target)
    req.add_header(
        "Authorization",
        f"AWS4-HMAC-SHA256 Credential=ASIAMEASUREMEASURE00/20260101/{REGION}/{service}/aws4_request, SignedHeaders=host, Signature=0",
    )
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.loads(r.read() or b"{}")


def sns_create_topic(endpoint: str) -> str:
    data = urllib.parse.urlencode({"Action": "CreateTopic", "Name": "selfheal-measure"}).encode()
    req = urllib.request.Request(endpoint + "/", data=data, method="POST")
    req.add_header(
        "Authorization",
        f"AWS4-HMAC-SHA256 Credential=ASIAMEASUREMEASURE00/20260101/{REGION}/sns/aws4_request, SignedHeaders=host, Signature=0",
    )
    with urllib.request.urlopen(req, timeout=10) as r:
        text = r.read().decode()
    return text.split("<TopicArn>")[1].split("</TopicArn>")[0]


def wait_port(port: int, timeout: float = 30) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bin-dir", default=os.path.join(os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target")), "release"))
    ap.add_argument("--server", default=os.path.join(ROOT, "deploy", "measure", "target", "release", "selfheal-measure-server"))
    ap.add_argument("--moto", default=os.path.join(ROOT, ".venv", "bin", "moto_server"))
    ap.add_argument("--rounds", type=int, default=20)
    ap.add_argument("--json", default=None, help="also write the figures here")
    args = ap.parse_args()

    work = tempfile.mkdtemp(prefix="selfheal-measure-")
    started: list = []
    functions: dict[str, Function] = {}
    try:
        server = subprocess.Popen([args.server, work], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        started.append(server)
        url = server.stdout.readline().strip()
        if not url.startswith("https://"):
            raise RuntimeError(f"selfheal-measure-server did not start (said {url!r})")
        with open(os.path.join(work, "ca.pem"), encoding="ascii") as f:
            ca = f.read()
        with open(os.path.join(work, "kubeconfig"), encoding="ascii") as f:
            token = f.read().split("token: ")[1].split()[0]
        kube = Kube(url, token, os.path.join(work, "ca.pem"))

        moto_port = free_port()
        moto = subprocess.Popen(
            [args.moto, "-H", "127.0.0.1", "-p", str(moto_port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        started.append(moto)
        wait_port(moto_port)
        endpoint = f"http://127.0.0.1:{moto_port}"
        topic = sns_create_topic(endpoint)
        machine = aws(
            "states",
            "AWSStepFunctions.CreateStateMachine",
            {
                "name": "remediate",
                "definition": json.dumps({"StartAt": "Done", "States": {"Done": {"Type": "Succeed"}}}),
                "roleArn": f"arn:aws:iam::{ACCOUNT}:role/measure",
            },
            endpoint,
        )["stateMachineArn"]
        secret = aws(
            "secretsmanager",
            "secretsmanager.CreateSecret",
            {"Name": "selfheal-webhook", "SecretString": "measure-bearer-token"},
            endpoint,
            "1.1",
        )["ARN"]

        # moto loads each service backend lazily (the first SecureString put
        # costs it seconds); warm it so the figures are the functions'.
        t_warm = time.monotonic()
        aws(
            "ssm",
            "AmazonSSM.PutParameter",
            {"Name": "/selfheal/warm", "Value": "x", "Type": "SecureString"},
            endpoint,
            "1.1",
        )
        print(f"moto warm-up (first SSM SecureString put): {time.monotonic() - t_warm:.1f} s", file=sys.stderr)

        kube_env = {
            "SELFHEAL_CLUSTER_ENDPOINT": url,
            "SELFHEAL_CLUSTER_CA": ca,
            "SELFHEAL_DEFAULT_CLUSTER": "measure",
            "SELFHEAL_COOLDOWN_SECONDS": "0",
            "SELFHEAL_MAX_ACTIONS": "100000",
            "SELFHEAL_REQUIRE_OPT_IN": "true",
        }
        aws_env = {"AWS_ENDPOINT_URL": endpoint}
        envs = {
            **{name: kube_env for name in KUBE_HANDLERS},
            "notify": {
                **aws_env,
                "SELFHEAL_TOPIC_ARN": topic,
                "SELFHEAL_APPROVAL_URL": "https://approve.measure.invalid/",
                "SELFHEAL_APPROVAL_PARAM_PREFIX": "/selfheal/measure/approvals",
            },
            "approve": {**aws_env, "SELFHEAL_APPROVAL_PARAM_PREFIX": "/selfheal/measure/approvals"},
            "ingest": {
                **aws_env,
                "SELFHEAL_STATE_MACHINE_ARN": machine,
                "SELFHEAL_WEBHOOK_SECRET_ARN": secret,
                "SELFHEAL_DEFAULT_CLUSTER": "measure",
            },
        }
        for name in KUBE_HANDLERS + AWS_FUNCTIONS:
            binary = os.path.join(args.bin_dir, name)
            if not os.access(binary, os.X_OK):
                raise RuntimeError(f"{binary} missing: cargo build --release --bins")
            functions[name] = Function(name, binary, envs[name], work)
        for f in functions.values():
            f.wait_init()

        execution = f"arn:aws:states:{REGION}:{ACCOUNT}:execution:remediate:measure"
        target = {"cluster": "measure", "namespace": "shop", "deployment": "checkout"}
        with open(os.path.join(ROOT, "crates", "selfheal-events", "tests", "fixtures", "cloudwatch", "eventbridge-single-metric-alarm.json"), encoding="utf-8") as fx:
            alarm_event = json.load(fx)
        seen_links: set[str] = set()
        for i in range(args.rounds):
            kube.set_api_image(f"registry.example/shop/api:2.0.{i}")
            kube.wait_rolled_out()
            req = {"action": "rollback", "target": target, "reason": "measure", "execution": f"{execution}-{i}"}
            out = functions["rollback"].ok(req)
            assert out["status"] == "applied", out
            for _ in range(200):
                verdict = functions["verify"].ok(out)
                if verdict["state"] == "done":
                    break
                assert verdict["state"] == "waiting", verdict
                time.sleep(0.05)
            assert verdict["state"] == "done", verdict
            for action in ("pause", "resume", "restart"):
                res = functions[action].ok({"action": action, "target": target, "reason": "measure"})
                assert res["status"] == "applied", res
            kube.wait_rolled_out()

            base = {
                "execution": {"id": f"{execution}-{i}", "startedAt": "2026-11-27T10:00:00Z"},
                "request": {**req, "approval": True},
                "reportedAt": "2026-11-27T10:00:30Z",
            }
            asked = functions["notify"].ok(
                {**base, "event": "approvalRequested", "taskToken": f"token-{i}-{uuid.uuid4().hex}"}
            )
            functions["notify"].ok({**base, "event": "completed", "outcome": out, "verify": verdict})
            assert asked is not None, "notify answered null to approvalRequested"
            # The link id is the name of the SSM record notify just wrote.
            names: set[str] = set()
            page_token = None
            while True:
                query = {"Path": "/selfheal/measure/approvals", "Recursive": True, "MaxResults": 10}
                if page_token:
                    query["NextToken"] = page_token
                listed = aws("ssm", "AmazonSSM.GetParametersByPath", query, endpoint, "1.1")
                names.update(p["Name"] for p in listed["Parameters"])
                page_token = listed.get("NextToken")
                if not page_token:
                    break
            fresh = names - seen_links
            assert len(fresh) == 1, f"expected one new approval record, found {sorted(fresh)}"
            seen_links.update(fresh)
            name = fresh.pop()
            link_id = name.rsplit("/", 1)[1]
            # Each link carries its own key; the approve link's is in the record.
            stored = aws("ssm", "AmazonSSM.GetParameter", {"Name": name, "WithDecryption": True}, endpoint, "1.1")
            key = json.loads(stored["Parameter"]["Value"])["approveKey"]
            page = functions["approve"].ok(
                {
                    "version": "2.0",
                    "rawPath": "/approve",
                    "rawQueryString": f"id={link_id}&decision=approve&key={key}",
                    "queryStringParameters": {"id": link_id, "decision": "approve", "key": key},
                    "headers": {"host": "approve.measure.invalid"},
                    "requestContext": {"http": {"method": "GET", "path": "/approve", "sourceIp": "127.0.0.1"}},
                    "isBase64Encoded": False,
                }
            )
            assert page.get("statusCode") == 200, f"approve GET of the link notify minted: {str(page)[:300]}"

            event = json.loads(json.dumps(alarm_event))
            event["id"] = str(uuid.uuid4())
            event["time"] = f"2026-11-27T10:{i // 60:02d}:{i % 60:02d}Z"
            event["detail"]["alarmName"] = f"selfheal-checkout-{i}"
            # The execution name derives from the alarm and its state change time.
            event["detail"]["state"]["timestamp"] = f"2026-11-27T10:{i // 60:02d}:{i % 60:02d}.000+0000"
            event["detail"]["configuration"]["description"] = (
                "measure\nselfheal: action=rollback cluster=measure namespace=shop deployment=checkout"
            )
            started_executions = functions["ingest"].ok(event)
            assert len(started_executions.get("started", [])) == 1, started_executions
            assert not started_executions.get("failed"), started_executions

        figures = {}
        for name, f in functions.items():
            d = sorted(f.durations)
            warm = d[:-1] if len(d) > 1 else d
            figures[name] = {
                "invocations": len(d),
                "init_ms": round(f.init * 1000, 1),
                "first_invoke_ms": round(f.durations[0] * 1000, 1),
                "p50_ms": round(statistics.median(warm) * 1000, 1),
                "p99_ms": round(d[min(len(d) - 1, int(len(d) * 0.99))] * 1000, 1),
                "max_ms": round(d[-1] * 1000, 1),
                "peak_rss_mib": round(f.vm("VmHWM") / 1024, 1),
            }
        print(f"{'function':<10} {'inv':>4} {'init ms':>8} {'1st ms':>8} {'p50 ms':>8} {'max ms':>8} {'peak RSS MiB':>13}")
        for name, x in figures.items():
            print(
                f"{name:<10} {x['invocations']:>4} {x['init_ms']:>8} {x['first_invoke_ms']:>8} "
                f"{x['p50_ms']:>8} {x['max_ms']:>8} {x['peak_rss_mib']:>13}"
            )
        if args.json:
            with open(args.json, "w", encoding="utf-8") as out_file:
                json.dump(figures, out_file, indent=2)
        return 0
    finally:
        for f in functions.values():
            f.stop()
        for p in started:
            if p.stdin:
                p.stdin.close()
            p.terminate()
            try:
                p.wait(timeout=5)
            except subprocess.TimeoutExpired:
                p.kill()
        if os.environ.get("SELFHEAL_MEASURE_KEEP"):
            print(f"logs kept in {work}", file=sys.stderr)
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
