"""SSRF vetting of webhook URLs, with real name resolution (localhost) where a name is involved."""

import pytest

from jobs.targets import RefusedError, vet

REFUSED = [
    "https://127.0.0.1/hook",
    "https://10.0.0.1/hook",
    "http://169.254.169.254/latest/meta-data/",
    "https://[::1]/hook",
    "https://localhost/hook",  # a name that resolves to loopback
    "https://[::ffff:127.0.0.1]/hook",  # loopback dressed as IPv6
    "https://192.168.1.10:8443/hook",
    "https://100.64.0.1/hook",  # carrier-grade NAT
    "file:///etc/passwd",
    "gopher://127.0.0.1:6379/_FLUSHALL",
    "ftp://example.com/hook",
    "https://user:secret@example.com/hook",
    "https:///no-host",
    "https://example.com:99999/hook",
    "https://exa mple.com/hook",
    "not a url",
    "",
]


@pytest.mark.parametrize("url", REFUSED)
def test_unsafe_urls_are_refused_with_the_flag_off(url: str) -> None:
    with pytest.raises(RefusedError):
        vet(url, allow_private=False)


def test_the_reason_names_the_kind_of_address() -> None:
    with pytest.raises(RefusedError, match="link-local"):
        vet("https://169.254.169.254/", allow_private=False)
    with pytest.raises(RefusedError, match="loopback"):
        vet("https://localhost/", allow_private=False)


def test_plain_http_needs_the_flag_even_to_a_public_address() -> None:
    with pytest.raises(RefusedError, match="https"):
        vet("http://93.184.215.14/hook", allow_private=False)


def test_a_public_address_is_accepted_and_kept_for_the_connection() -> None:
    target = vet("https://93.184.215.14:8443/hooks/in?x=1#frag", allow_private=False)
    assert (target.scheme, target.host, target.port) == ("https", "93.184.215.14", 8443)
    assert target.address == "93.184.215.14"
    assert (target.netloc, target.path) == ("93.184.215.14:8443", "/hooks/in?x=1")


def test_the_flag_admits_loopback_and_http_but_never_unspecified_or_multicast() -> None:
    assert vet("http://localhost:8080/", allow_private=True).address in ("127.0.0.1", "::1")
    assert vet("http://[::1]:8080/", allow_private=True).netloc == "[::1]:8080"
    for url in ("http://0.0.0.0:8080/", "http://224.0.0.1/", "gopher://127.0.0.1/"):
        with pytest.raises(RefusedError):
            vet(url, allow_private=True)


def test_every_address_a_name_resolves_to_must_pass() -> None:
    def both(host: str, port: int) -> list[str]:
        return ["93.184.215.14", "10.0.0.1"]  # a public address with a private one beside it

    with pytest.raises(RefusedError, match=r"10\.0\.0\.1"):
        vet("https://mixed.example/", allow_private=False, resolver=both)


def test_the_allow_list_admits_only_its_hosts_and_their_subdomains() -> None:
    allowed = ("hooks.example.com", ".partner.example")
    assert vet("https://93.184.215.14/", allow_private=False, allowed_hosts=()).host == "93.184.215.14"
    with pytest.raises(RefusedError, match="WEBHOOK_ALLOWED_HOSTS"):
        vet("https://93.184.215.14/", allow_private=False, allowed_hosts=allowed)
    with pytest.raises(RefusedError, match="WEBHOOK_ALLOWED_HOSTS"):
        vet("https://evil-partner.example/", allow_private=False, allowed_hosts=allowed)
    with pytest.raises(RefusedError, match="loopback"):  # allowed by name, still refused by address
        vet("https://localhost/", allow_private=False, allowed_hosts=("localhost",))
