"""Authentication, tokens and the cryptography written in Python."""

import pytest

pk = pytest.mark.packages


@pk("pyjwt")
def test_pyjwt():
    """PyJWT signs and verifies an HS256 token, rejects a wrong key"""
    import jwt

    token = jwt.encode({"sub": "ada", "exp": 4102444800}, "k" * 32, algorithm="HS256")
    assert jwt.decode(token, "k" * 32, algorithms=["HS256"])["sub"] == "ada"
    with pytest.raises(jwt.InvalidSignatureError):
        jwt.decode(token, "x" * 32, algorithms=["HS256"])


@pk("passlib")
def test_passlib():
    """passlib hashes and verifies a password (pbkdf2_sha256)"""
    from passlib.hash import pbkdf2_sha256

    digest = pbkdf2_sha256.using(rounds=1000).hash("secret")
    assert pbkdf2_sha256.verify("secret", digest) and not pbkdf2_sha256.verify("wrong", digest)


@pk("oauthlib")
def test_oauthlib():
    """oauthlib prepares an OAuth 2 authorisation URL and parses the redirect"""
    from oauthlib.oauth2 import WebApplicationClient

    client = WebApplicationClient("cid")
    url = client.prepare_request_uri("https://auth.example/authorize", redirect_uri="https://app.example/cb", state="s1")
    assert "client_id=cid" in url and "state=s1" in url
    assert client.parse_request_uri_response("https://app.example/cb?code=c0de&state=s1", state="s1")["code"] == "c0de"


@pk("requests-oauthlib", "oauthlib", "requests")
def test_requests_oauthlib():
    """requests-oauthlib signs a request with OAuth 1"""
    import requests
    from requests_oauthlib import OAuth1

    prepared = requests.Request("GET", "https://api.example/r", auth=OAuth1("ck", "cs", "tk", "ts")).prepare()
    header = prepared.headers["Authorization"]
    header = header.decode() if isinstance(header, bytes) else header
    assert header.startswith("OAuth ") and 'oauth_signature_method="HMAC-SHA1"' in header


@pk("rsa", "pyasn1")
def test_rsa():
    """rsa generates a key, signs and verifies, encrypts and decrypts"""
    import rsa

    public, private = rsa.newkeys(512)
    signature = rsa.sign(b"message", private, "SHA-256")
    assert rsa.verify(b"message", signature, public) == "SHA-256"
    assert rsa.decrypt(rsa.encrypt(b"hi", public), private) == b"hi"
    assert rsa.PrivateKey.load_pkcs1(private.save_pkcs1()) == private


@pk("pyasn1")
def test_pyasn1():
    """pyasn1 encodes and decodes DER"""
    from pyasn1.codec.der import decoder, encoder
    from pyasn1.type import univ

    value = univ.Sequence()
    value.setComponentByPosition(0, univ.Integer(42))
    decoded, rest = decoder.decode(encoder.encode(univ.Integer(42)))
    assert int(decoded) == 42 and rest == b""


@pk("ecdsa")
def test_ecdsa():
    """ecdsa signs and verifies on P-256"""
    import ecdsa

    key = ecdsa.SigningKey.generate(curve=ecdsa.NIST256p)
    signature = key.sign(b"data")
    assert key.get_verifying_key().verify(signature, b"data")


@pk("pyotp")
def test_pyotp():
    """pyotp's TOTP codes verify"""
    import pyotp

    totp = pyotp.TOTP(pyotp.random_base32())
    assert totp.verify(totp.now())
    assert pyotp.TOTP("JBSWY3DPEHPK3PXPJBSWY3DP").at(0) == "781680"


@pk("itsdangerous")
def test_itsdangerous():
    """itsdangerous signs, verifies and refuses tampered data"""
    from itsdangerous import BadSignature, URLSafeSerializer

    serializer = URLSafeSerializer("secret")
    token = serializer.dumps({"id": 5})
    assert serializer.loads(token) == {"id": 5}
    with pytest.raises(BadSignature):
        serializer.loads(token[:-2] + "xx")


@pk("asn1crypto")
def test_asn1crypto(https):
    """asn1crypto parses the corpus CA's certificate"""
    from asn1crypto import pem, x509

    with open(https["cafile"], "rb") as f:
        _, _, der = pem.unarmor(f.read())
    cert = x509.Certificate.load(der)
    assert cert.subject.native["common_name"] == "ferrocorn corpus CA" and cert.ca


@pk("scramp")
def test_scramp():
    """scramp runs a SCRAM-SHA-256 exchange between client and server"""
    from scramp import ScramClient, ScramMechanism

    mechanism = ScramMechanism("SCRAM-SHA-256")
    salt, stored, server_key, iterations = mechanism.make_auth_info("pw", iteration_count=4096)
    client = ScramClient(["SCRAM-SHA-256"], "user", "pw")
    server = mechanism.make_server(lambda user: (salt, stored, server_key, iterations))
    server.set_client_first(client.get_client_first())
    client.set_server_first(server.get_server_first())
    server.set_client_final(client.get_client_final())
    client.set_server_final(server.get_server_final())


@pk("email-validator", "dnspython", "idna")
def test_email_validator():
    """email-validator normalises an address and refuses a bad one"""
    from email_validator import EmailNotValidError, validate_email

    assert validate_email("Ada@Example.com", check_deliverability=False).normalized == "Ada@example.com"
    with pytest.raises(EmailNotValidError):
        validate_email("not an address", check_deliverability=False)


@pk("dnspython")
def test_dnspython():
    """dnspython builds and parses a DNS message"""
    import dns.message
    import dns.name

    query = dns.message.make_query("example.com", "A")
    assert dns.message.from_wire(query.to_wire()).question[0].name == dns.name.from_text("example.com")


@pk("pydantic-core")
def test_pydantic_core():
    """pydantic-core validates with a schema (compiled Rust)"""
    from pydantic_core import SchemaValidator, core_schema

    assert SchemaValidator(core_schema.int_schema()).validate_python("3") == 3


@pk("pydantic", "pydantic-core", "typing-extensions", "typing-inspection", "annotated-types")
def test_pydantic():
    """pydantic validates a model (needs pydantic-core, compiled Rust)"""
    import pydantic

    class User(pydantic.BaseModel):
        id: int
        name: str

    assert User(id="3", name="ada").id == 3
    with pytest.raises(pydantic.ValidationError):
        User(id="x", name="ada")
