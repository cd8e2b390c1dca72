"""Fixtures of the API tests: the real traillake binary started on a free port, boto3 clients
pointed at it, and moto's S3 server for lake roots on S3."""

import json
import os
import pathlib
import signal
import socket
import subprocess
import time
import urllib.request

import boto3
import botocore.config
import pytest

REPO = pathlib.Path(__file__).resolve().parents[2]
MODEL = REPO.parent / "shared/reference/botocore-models/botocore-1.44.5_cloudtrail_2013-11-01_service-2.json"
ACCOUNT = "123456789012"
REGION = "us-east-1"


def binary():
    if os.environ.get("TRAILLAKE_BIN"):
        return os.environ["TRAILLAKE_BIN"]
    target = os.environ.get("CARGO_TARGET_DIR", str(REPO / "target"))
    return str(pathlib.Path(target) / "debug" / "traillake")


class Server:
    """A traillake server process on a lake root."""

    def __init__(self, root, *args, env=None):
        self.root = str(root)
        self.args = list(args)
        self.env = dict(os.environ, **(env or {}))
        self.process = None
        self.url = None
        self.stderr_path = None

    def start(self):
        self.stderr_path = pathlib.Path(f"/tmp/traillake-test-{os.getpid()}-{time.monotonic_ns()}.log")
        stderr = open(self.stderr_path, "w")
        self.process = subprocess.Popen(
            [binary(), "serve", "--root", self.root, "--listen", "127.0.0.1:0", *self.args],
            stdout=subprocess.PIPE,
            stderr=stderr,
            env=self.env,
            text=True,
        )
        line = self.process.stdout.readline()
        if "listening on" not in line:
            self.process.wait(timeout=10)
            raise RuntimeError(f"server did not start: {line!r} {self.log()}")
        self.url = line.split("listening on ", 1)[1].split()[0]
        return self

    def log(self):
        return self.stderr_path.read_text() if self.stderr_path else ""

    def stop(self):
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            self.process.wait(timeout=20)
        return self.process.returncode

    def client(self, service="cloudtrail", validate=True, access_key="AKIDEXAMPLE"):
        config = botocore.config.Config(
            parameter_validation=validate, retries={"max_attempts": 1, "mode": "standard"}
        )
        return boto3.client(
            service,
            endpoint_url=self.url,
            region_name=REGION,
            aws_access_key_id=access_key,
            aws_secret_access_key="secret",
            config=config,
        )

    def raw(self, body, target=None, method="POST", path="/", headers=None):
        """Sends a raw request; returns (status, headers, parsed JSON body)."""
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        request = urllib.request.Request(self.url + path, data=data if method == "POST" else None, method=method)
        request.add_header("Content-Type", "application/x-amz-json-1.1")
        if target:
            request.add_header("X-Amz-Target", f"com.amazonaws.cloudtrail.v20131101.CloudTrail_20131101.{target}")
        for key, value in (headers or {}).items():
            request.add_header(key, value)
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return response.status, {k.lower(): v for k, v in response.headers.items()}, json.loads(response.read() or b"{}")
        except urllib.error.HTTPError as error:
            raw = error.read()
            return error.code, {k.lower(): v for k, v in error.headers.items()}, json.loads(raw) if raw else {}


@pytest.fixture
def server(tmp_path):
    started = Server(tmp_path / "lake").start()
    yield started
    started.stop()


@pytest.fixture
def cloudtrail(server):
    return server.client()


@pytest.fixture(scope="session")
def model():
    return json.loads(MODEL.read_text())


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def s3_server():
    """moto's S3 server on a free loopback port, for the whole session."""
    port = free_port()
    process = subprocess.Popen(
        ["moto_server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 30
    while time.time() < deadline:
        try:
            urllib.request.urlopen(url, timeout=1)
            break
        except urllib.error.HTTPError:
            break
        except OSError:
            time.sleep(0.2)
    yield url
    process.terminate()
    process.wait(timeout=10)


@pytest.fixture
def s3_env(s3_server):
    """The environment of a traillake server whose root is on the moto S3 server."""
    return {
        "AWS_ENDPOINT_URL_S3": s3_server,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": REGION,
        "AWS_REGION": REGION,
    }


@pytest.fixture
def s3_bucket(s3_server, request):
    name = "lake-" + request.node.name.lower().replace("_", "-")[:40]
    s3 = boto3.client(
        "s3", endpoint_url=s3_server, region_name=REGION, aws_access_key_id="testing", aws_secret_access_key="testing"
    )
    s3.create_bucket(Bucket=name)
    return name


def error_code(excinfo):
    return excinfo.value.response["Error"]["Code"]


def store_id(arn):
    return arn.rsplit("/", 1)[1]
