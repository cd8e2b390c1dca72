"""TLS: both front doors served over TLS with --tls-cert / --tls-key, read by boto3 (HTTPS, the
server's certificate verified) and by a gRPC client over HTTP/2 with TLS; plain HTTP is refused."""

import datetime
import ipaddress
import urllib.request

import boto3
import botocore.config
import grpc
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from conftest import REGION, Server
from test_grpc import pb  # noqa: F401 (pb is a fixture)


def self_signed(folder):
    """Writes a certificate for 127.0.0.1 and localhost and its key; returns their paths."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "traillake test")])
    now = datetime.datetime.now(datetime.timezone.utc)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    return cert_path, key_path


@pytest.fixture
def tls_server(tmp_path):
    cert, key = self_signed(tmp_path)
    started = Server(tmp_path / "lake", "--tls-cert", str(cert), "--tls-key", str(key)).start()
    started.cert = cert
    yield started
    started.stop()


def test_both_front_doors_speak_tls(tls_server, pb):
    assert tls_server.url.startswith("https://127.0.0.1:")
    cloudtrail = boto3.client("cloudtrail", endpoint_url=tls_server.url, region_name=REGION, aws_access_key_id="AKID",
                              aws_secret_access_key="secret", verify=str(tls_server.cert),
                              config=botocore.config.Config(retries={"max_attempts": 1}))
    arn = cloudtrail.create_event_data_store(Name="over-tls", RetentionPeriod=7)["EventDataStoreArn"]

    credentials = grpc.ssl_channel_credentials(root_certificates=tls_server.cert.read_bytes())
    with grpc.secure_channel(tls_server.url.removeprefix("https://"), credentials) as channel:
        stub = pb.service_pb2_grpc.CloudTrailStub(channel)
        listed = stub.ListEventDataStores(pb.event_data_stores.ListEventDataStoresRequest())
        assert [store.EventDataStoreArn for store in listed.EventDataStores] == [arn]

    # Plain HTTP on the TLS port gets no answer; a client that does not trust the certificate
    # refuses it.
    with pytest.raises(Exception):
        urllib.request.urlopen(tls_server.url.replace("https://", "http://"), timeout=10)
    untrusting = boto3.client("cloudtrail", endpoint_url=tls_server.url, region_name=REGION, aws_access_key_id="AKID",
                              aws_secret_access_key="secret", config=botocore.config.Config(retries={"max_attempts": 1}))
    with pytest.raises(Exception, match="(?i)certificate|SSL"):
        untrusting.list_event_data_stores()
    # The server goes on after those failed handshakes.
    assert cloudtrail.list_event_data_stores()["EventDataStores"][0]["EventDataStoreArn"] == arn


def test_a_missing_or_broken_certificate_stops_the_start(tmp_path):
    cert, key = self_signed(tmp_path)
    for arguments, words in [
        (["--tls-cert", str(tmp_path / "none.pem"), "--tls-key", str(key)], "certificate file"),
        (["--tls-cert", str(cert), "--tls-key", str(cert)], "key file"),
        (["--tls-cert", str(cert)], "--tls-key"),
    ]:
        with pytest.raises(RuntimeError, match=words):
            Server(tmp_path / "lake", *arguments).start()
