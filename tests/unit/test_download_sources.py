"""The rules for what a download may fetch and what its file and model may be called."""

import pytest

from server.downloads import sources
from server.errors import InvalidArgument


@pytest.mark.parametrize("address,public", [
    ("93.184.216.34", True), ("2606:4700::1111", True),
    ("127.0.0.1", False), ("127.8.9.10", False), ("10.1.2.3", False), ("172.16.0.1", False),
    ("192.168.1.1", False), ("169.254.169.254", False), ("100.64.0.1", False), ("0.0.0.0", False),
    ("224.0.0.1", False), ("::1", False), ("fe80::1%eth0", False), ("fc00::1", False),
    ("::ffff:127.0.0.1", False), ("::ffff:10.0.0.1", False), ("::", False),
])
def test_only_global_unicast_addresses_are_public(address, public):
    assert sources.is_public_address(address) is public


def test_a_host_with_any_private_address_is_refused():
    assert sources.address_refusal("mixed.example", ["93.184.216.34", "10.0.0.5"]) is not None
    assert sources.address_refusal("public.example", ["93.184.216.34"]) is None


@pytest.mark.parametrize("url,problem", [
    ("file:///etc/passwd", "only http:// and https://"), ("ftp://example.com/x", "'ftp://'"),
    ("gopher://example.com/", "'gopher://'"), ("example.com/x.gguf", "no scheme"),
    ("http:///x.gguf", "no host"), ("http://u:p@example.com/x", "credentials"),
    ("http://example.com/a b", "spaces or control characters"),
    ("http://example.com:99999/x", "not a valid URL"), ("http://" + "a" * 5000, "longer than"),
])
def test_bad_urls(url, problem):
    with pytest.raises(sources.UrlRejected, match=problem):
        sources.parse_http_url(url)


def test_good_url_parts():
    parsed = sources.parse_http_url("HTTPS://Example.com/models/a%20b.gguf?download=1")
    assert (parsed.scheme, parsed.host, parsed.port) == ("https", "example.com", 443)
    assert parsed.target == "/models/a%20b.gguf?download=1"
    assert parsed.last_segment == "a%20b.gguf"


@pytest.mark.parametrize("name,problem", [
    ("", "must not be empty"), ("../x", "path separator"), ("..", "'..'"), ("a..b", "'..'"),
    ("/etc/passwd", "absolute path"), ("\\\\server\\share", "absolute path"),
    ("C:\\x.gguf", "absolute path"), ("a/b", "path separator"), ("a\\b", "path separator"),
    ("a\x00b", "NUL"), ("%2e%2e", "'..' once percent-decoded"),
    ("%2E%2E%2Fetc", "once percent-decoded"), ("%00x", "NUL character once percent-decoded"),
    ("x%20y.gguf", "must not be percent-encoded"), (".hidden", "may only hold"),
    ("a b.gguf", "may only hold"),
])
def test_unsafe_file_names(name, problem):
    with pytest.raises(InvalidArgument) as error:
        sources.check_filename(name, "filename")
    assert error.value.violations[0].field == "filename"
    assert problem in error.value.violations[0].description


@pytest.mark.parametrize("name", ["qwen2.5-0.5b-instruct-q4_k_m.gguf",
                                  "Llama-3.2-1B-Instruct-Q4_K_M.gguf", "model+v2.gguf"])
def test_safe_file_names(name):
    assert sources.check_filename(name, "filename") == name


def test_model_ids():
    assert sources.check_model_id("qwen2.5:0.5b", "model_id") == "qwen2.5:0.5b"
    for bad in ("a/b", "..", "%2e%2e", "x\x00", "-leading", "a" * 129):
        with pytest.raises(InvalidArgument):
            sources.check_model_id(bad, "model_id")
    assert sources.model_id_from_filename("Llama-3.2-1B.Q4_K_M.gguf") == "Llama-3.2-1B.Q4_K_M"
    assert sources.model_id_from_filename("plain") == "plain"


def test_sha256_is_normalised():
    assert sources.check_sha256("AB" * 32, "expected_sha256") == "ab" * 32
    with pytest.raises(InvalidArgument):
        sources.check_sha256("xyz", "expected_sha256")
