import base64

from harness.runtime.redact import MASK, Redactor


def test_registered_values_are_masked_also_in_base64():
    r = Redactor()
    r.add("secure-password", None, "ab")  # too-short values are ignored, not masked
    b64 = base64.b64encode(b"secure-password").decode()
    out = r.redact(f"password is secure-password; data: {b64}; ab stays")
    assert "secure-password" not in out and b64 not in out
    assert out.count(MASK) >= 2 and "ab stays" in out


def test_secret_shapes_are_masked_without_registration():
    r = Redactor()
    jwt = "eyJhbGciOiJSUzI1NiJ9.eyJpc3MiOiJrdWJlcm5ldGVzIn0.c2lnbmF0dXJlLXZhbHVl"
    pem = "-----BEGIN EC PRIVATE KEY-----\nMHcCAQEEI\n-----END EC PRIVATE KEY-----"
    text = (f"token={jwt}\n{pem}\nAuthorization: Bearer abc.def\n"
            '{"root_token": "hvs.CAESIJ1234567890abcdefghij", "unseal_keys_b64": ["x"]}\n'
            "client_token hvs.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")
    out = r.redact(text)
    for leaked in (jwt, "MHcCAQEEI", "abc.def", "CAESIJ1234567890", "AAAAAAAAAAAAAAAAAAAA"):
        assert leaked not in out
    assert "Authorization: Bearer" in out


def test_ordinary_text_is_untouched():
    r = Redactor()
    text = "kube-apiserver ready on https://127.0.0.1:6443 after 2.1s"
    assert r.redact(text) == text


def test_only_identifying_keys_are_exempt_from_value_redaction():
    from harness.runtime.redact import secret_values

    assert secret_values({"username": "postgres", "password": "pw-1", "secret-key": "k",
                          "api_key": "x"}) == ["pw-1", "k", "x"]


def test_eso_log_lines_keep_the_external_secret_they_name():
    """`"ExternalSecret":{"name":...}` names an object: `harness logs eso` must show it,
    while a `secret` field's value is still masked."""
    from harness.runtime.redact import redact as _redact

    line = ('{"ExternalSecret":{"name":"payments-api","namespace":"pay"},'
            '"secret":"s3cr3t-value"}')
    out = _redact(line)
    assert '"ExternalSecret":{"name":"payments-api"' in out and "s3cr3t-value" not in out
    for other in ("externalSecret=hunter2-value", "externalToken: hunter2-value",
                  '"ExternalPassword":"hunter2-value"', "externalsecret: hunter2-value"):
        assert "hunter2-value" not in _redact(other), other


def test_a_private_key_logged_over_many_lines_is_masked_line_by_line():
    """`harness logs` reads line by line: the key's body lines are masked too."""
    from harness.runtime.redact import MASK, LineRedactor

    mask = LineRedactor()
    lines = ["starting", "key: -----BEGIN RSA PRIVATE KEY-----", "MIIEowIBAAKCAQEA1234",
             "abcdEFGH5678", "-----END RSA PRIVATE KEY-----", "listening on 127.0.0.1"]
    out = [mask(line) for line in lines]
    assert out[0] == "starting" and out[-1] == "listening on 127.0.0.1"
    assert out[1] == f"key: {MASK}" and out[2:5] == [MASK] * 3
    assert not any("MIIE" in o or "abcd" in o for o in out)
