"""HTTP clients and the `ssl` module behind them, against the local HTTPS
server and its own CA: verification on, as in production."""

import json
import ssl
import urllib.parse

import pytest

pk = pytest.mark.packages


def _host_url(https, path):
    """The server's URL with `localhost` as its name (the certificate names
    localhost and 127.0.0.1)."""
    parts = urllib.parse.urlsplit(https["url"])
    return f"https://localhost:{parts.port}{path}"


def test_ssl_verifies_against_the_ca(https):
    """ssl: the right CA is accepted; a default context refuses the private CA"""
    import urllib.error
    import urllib.request

    context = ssl.create_default_context(cafile=https["cafile"])
    with urllib.request.urlopen(_host_url(https, "/ok"), context=context, timeout=10) as response:
        assert json.load(response)["path"] == "/ok"
    with pytest.raises(urllib.error.URLError) as caught:
        urllib.request.urlopen(_host_url(https, "/"), context=ssl.create_default_context(), timeout=10)
    assert isinstance(caught.value.reason, ssl.SSLCertVerificationError)
    assert caught.value.reason.reason == "CERTIFICATE_VERIFY_FAILED"


@pk("requests", "urllib3", "certifi", "charset-normalizer", "idna")
def test_requests(https):
    """requests: GET with params, POST JSON, verify= the CA, a refused certificate"""
    import requests

    got = requests.get(_host_url(https, "/get"), params={"q": "é"}, verify=https["cafile"], timeout=10)
    assert got.status_code == 200 and got.json()["query"] == "q=%C3%A9"
    posted = requests.post(_host_url(https, "/post"), json={"a": 1}, verify=https["cafile"], timeout=10).json()
    assert json.loads(posted["body"]) == {"a": 1} and posted["content_type"] == "application/json"
    with pytest.raises(requests.exceptions.SSLError):
        requests.get(_host_url(https, "/"), timeout=10)  # certifi's roots do not include the corpus CA


@pk("httpx", "httpcore", "h11", "anyio", "sniffio", "certifi", "idna")
def test_httpx(https):
    """httpx, sync and async clients over TLS"""
    import asyncio

    import httpx

    context = ssl.create_default_context(cafile=https["cafile"])
    with httpx.Client(verify=context) as client:
        assert client.get(_host_url(https, "/sync"), headers={"X-Corpus": "1"}).json()["headers"]["x-corpus"] == "1"

    async def fetch():
        async with httpx.AsyncClient(verify=context) as client:
            return (await client.get(_host_url(https, "/async"))).json()["path"]

    assert asyncio.run(fetch()) == "/async"


@pk("urllib3")
def test_urllib3(https):
    """urllib3 PoolManager with a CA bundle and hostname checks"""
    import urllib3

    pool = urllib3.PoolManager(ca_certs=https["cafile"], cert_reqs="CERT_REQUIRED")
    response = pool.request("GET", _host_url(https, "/pool"), retries=False)
    assert response.status == 200 and response.json()["path"] == "/pool"


@pk("requests-toolbelt", "requests")
def test_requests_toolbelt(https):
    """requests-toolbelt streams a multipart upload"""
    import requests
    from requests_toolbelt import MultipartEncoder

    encoder = MultipartEncoder(fields={"field": "value", "file": ("a.txt", b"abc", "text/plain")})
    posted = requests.post(
        _host_url(https, "/upload"), data=encoder, headers={"Content-Type": encoder.content_type},
        verify=https["cafile"], timeout=10,
    ).json()
    assert 'name="file"; filename="a.txt"' in posted["body"] and "abc" in posted["body"]


@pk("h11")
def test_h11():
    """h11's client state machine writes and reads HTTP/1.1"""
    import h11

    client = h11.Connection(h11.CLIENT)
    data = client.send(h11.Request(method="GET", target="/", headers=[("Host", "x")]))
    assert data.startswith(b"GET / HTTP/1.1\r\n")
    client.receive_data(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi")
    assert isinstance(client.next_event(), h11.Response)
    assert client.next_event().data == b"hi"


@pk("charset-normalizer")
def test_charset_normalizer():
    """charset-normalizer detects a legacy encoding"""
    from charset_normalizer import from_bytes

    best = from_bytes("Größenwahn und Übermut, ça va très bien".encode("cp1252")).best()
    assert best is not None and "Übermut" in str(best)


@pk("idna")
def test_idna():
    """idna encodes an internationalised domain name"""
    import idna

    assert idna.encode("bücher.example") == b"xn--bcher-kva.example"


@pk("boto3", "botocore", "s3transfer", "jmespath", "python-dateutil", "urllib3")
def test_boto3():
    """boto3 builds an S3 client and signs a request (botocore's Stubber, no network)"""
    import boto3
    from botocore.stub import Stubber

    client = boto3.client("s3", region_name="eu-west-1", aws_access_key_id="k", aws_secret_access_key="s")
    url = client.generate_presigned_url("get_object", Params={"Bucket": "b", "Key": "k"}, ExpiresIn=60)
    assert "Signature=" in url
    with Stubber(client) as stub:
        stub.add_response("list_buckets", {"Buckets": [{"Name": "b"}]})
        assert [b["Name"] for b in client.list_buckets()["Buckets"]] == ["b"]


@pk("jmespath")
def test_jmespath():
    """jmespath queries a document"""
    import jmespath

    assert jmespath.search("a[?n > `1`].n", {"a": [{"n": 1}, {"n": 2}]}) == [2]


@pk("certifi")
def test_certifi():
    """certifi's bundle loads into an SSLContext"""
    import certifi

    context = ssl.create_default_context(cafile=certifi.where())
    assert context.cert_store_stats()["x509_ca"] > 50


@pk("sentry-sdk", "urllib3", "certifi")
def test_sentry_sdk(https):
    """sentry-sdk captures an exception and sends its envelope over HTTPS"""
    import sentry_sdk

    port = urllib.parse.urlsplit(https["url"]).port
    events = []

    def keep(event, hint):
        events.append(event)
        return event

    sentry_sdk.init(dsn=f"https://key@localhost:{port}/1", ca_certs=https["cafile"], before_send=keep)
    try:
        1 / 0
    except ZeroDivisionError:
        sentry_sdk.capture_exception()
    sentry_sdk.flush(timeout=10)
    client = sentry_sdk.get_client()
    client.close()
    assert events and events[0]["exception"]["values"][0]["type"] == "ZeroDivisionError"
