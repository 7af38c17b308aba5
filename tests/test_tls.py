"""HTTPS on the LAN (issue 13.12): the box's own CA, the page over TLS inside waitress's loop, plain HTTP
redirected, cookies that never travel in the clear, and the fingerprint a shop checks on the panel."""

from __future__ import annotations

import datetime
import http.client
import socket
import ssl
import stat
import threading
import time

import pytest
from cryptography import x509

from appliance import certs
from appliance.clock import FakeClock
from appliance.config import Config, ModemConfig, PanelConfig, WebConfig, parse
from appliance.errors import ConfigError
from tests.conftest import trusting


@pytest.fixture
def running(tmp_path):
    """The box as it is shipped: the page HTTPS, plain HTTP on a second port answering with a redirect."""
    from smsgenie.box import RunningBox

    with socket.socket() as s:  # a free port for the plain-HTTP listener
        s.bind(("127.0.0.1", 0))
        plain_port = s.getsockname()[1]
    config = Config(data_dir=str(tmp_path / "data"), service_code="YL08",
                    modems=(ModemConfig(port=str(tmp_path / "no-modem")),),
                    web=WebConfig(listen="127.0.0.1:0", redirect_from=f"127.0.0.1:{plain_port}"),
                    panel=PanelConfig(display="emulator", buttons="mock"))
    box = RunningBox(config)
    thread = threading.Thread(target=box.run, daemon=True)
    thread.start()
    yield box, plain_port
    box.stop()
    thread.join(timeout=20)


def https(box) -> http.client.HTTPSConnection:
    host, port = box.url.removeprefix("https://").rsplit(":", 1)
    return http.client.HTTPSConnection(host, int(port), context=trusting(box), timeout=10)


# --- the certificates -------------------------------------------------------------------------------


def test_the_page_is_https_with_a_chain_that_verifies_against_the_box_ca(running):
    box, _ = running
    assert box.url.startswith("https://127.0.0.1:")
    conn = https(box)
    conn.request("GET", "/setup")  # the box's first page, before it has an admin
    answer = conn.getresponse()
    assert answer.status == 200 and "短信精灵" in answer.read().decode()
    assert conn.sock.version() in ("TLSv1.2", "TLSv1.3")
    with pytest.raises(ssl.SSLCertVerificationError):  # a browser that has not trusted the CA is told so
        host, port = box.url.removeprefix("https://").rsplit(":", 1)
        plain_trust = http.client.HTTPSConnection(host, int(port), context=ssl.create_default_context(), timeout=5)
        plain_trust.request("GET", "/setup")


def test_the_session_cookie_is_secure_httponly_and_lax(running):
    box, _ = running
    conn = https(box)
    conn.request("GET", "/setup")
    cookie = conn.getresponse().getheader("Set-Cookie")
    assert cookie and "Secure" in cookie and "HttpOnly" in cookie and "SameSite=Lax" in cookie


def test_plain_http_is_redirected_to_the_same_path_on_https(running):
    box, plain_port = running
    https_port = box.url.rsplit(":", 1)[1]
    conn = http.client.HTTPConnection("127.0.0.1", plain_port, timeout=5)
    conn.request("GET", "/history?page=2", headers={"Host": f"127.0.0.1:{plain_port}"})
    answer = conn.getresponse()
    assert answer.status == 307
    assert answer.getheader("Location") == f"https://127.0.0.1:{https_port}/history?page=2"
    conn = http.client.HTTPConnection("127.0.0.1", plain_port, timeout=5)
    conn.request("GET", "/", headers={"Host": "evil.example/x@y"})  # not a host name: the box's own address
    assert "evil" not in conn.getresponse().getheader("Location")


def test_the_ca_downloads_over_plain_http_with_the_fingerprint_the_panel_shows(running):
    box, plain_port = running
    conn = http.client.HTTPConnection("127.0.0.1", plain_port, timeout=5)
    conn.request("GET", "/smsgenie-ca.crt")
    answer = conn.getresponse()
    assert answer.status == 200 and answer.getheader("Content-Type") == "application/x-x509-ca-cert"
    ca = x509.load_pem_x509_certificate(answer.read())
    assert ca.fingerprint(certs.hashes.SHA256()).hex().upper() == box.web.certificates.fingerprint
    from tests.conftest import wait_for

    link = box.daemon.panel_link()
    wait_for(lambda: link.screen is not None, 10, message="the panel's first frame")
    panel = box.daemon.panel
    snapshot = panel.read_snapshot(panel._slow_inputs(time.monotonic() + 3600))
    assert snapshot.certificate == box.web.certificates.fingerprint


def test_the_ca_can_certify_only_the_box_and_private_addresses(tmp_path):
    made = certs.ensure(tmp_path, ["smsgenie-ab12", "smsgenie-ab12.local", "localhost"],
                        ["127.0.0.1", "192.168.1.23"], FakeClock())
    ca = x509.load_pem_x509_certificate(made.ca.read_bytes())
    constraints = ca.extensions.get_extension_for_class(x509.NameConstraints)
    assert constraints.critical
    dns = {n.value for n in constraints.value.permitted_subtrees if isinstance(n, x509.DNSName)}
    assert dns == {"smsgenie-ab12", "smsgenie-ab12.local", "localhost"}
    nets = {str(n.value) for n in constraints.value.permitted_subtrees if isinstance(n, x509.IPAddress)}
    assert "192.168.0.0/16" in nets and "0.0.0.0/0" not in nets and len(nets) == len(certs.PRIVATE_NETWORKS)
    page = x509.load_pem_x509_certificates(made.chain.read_bytes())[0]
    san = page.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "smsgenie-ab12.local" in san.get_values_for_type(x509.DNSName)
    assert {str(a) for a in san.get_values_for_type(x509.IPAddress)} == {"127.0.0.1", "192.168.1.23"}
    assert (page.not_valid_after_utc - page.not_valid_before_utc).days <= 825  # what Apple's devices accept
    for key in ("ca.key", "server.key"):
        assert stat.S_IMODE((tmp_path / "tls" / key).stat().st_mode) == 0o600


def test_a_public_address_is_left_out_of_the_certificate(monkeypatch):
    monkeypatch.setattr(certs, "lan_ip", lambda: "203.0.113.9")
    _, addresses = certs.box_names()
    assert "203.0.113.9" not in addresses and "127.0.0.1" in addresses
    monkeypatch.setattr(certs, "lan_ip", lambda: "10.1.2.3")
    assert "10.1.2.3" in certs.box_names()[1]


def test_a_new_address_or_a_near_end_renews_the_page_certificate_under_the_same_ca(tmp_path):
    clock = FakeClock()
    names = ["box", "box.local", "localhost"]
    first = certs.ensure(tmp_path, names, ["127.0.0.1", "192.168.1.23"], clock)
    serial = x509.load_pem_x509_certificates(first.chain.read_bytes())[0].serial_number
    same = certs.ensure(tmp_path, names, ["127.0.0.1", "192.168.1.23"], clock)
    assert x509.load_pem_x509_certificates(same.chain.read_bytes())[0].serial_number == serial  # nothing to do
    moved = certs.ensure(tmp_path, names, ["127.0.0.1", "192.168.1.77"], clock)  # DHCP gave a new address
    page = x509.load_pem_x509_certificates(moved.chain.read_bytes())[0]
    assert page.serial_number != serial and moved.fingerprint == first.fingerprint
    clock.advance((certs.SERVER_DAYS - certs.RENEW_DAYS + 1) * 86400)
    later = certs.ensure(tmp_path, names, ["127.0.0.1", "192.168.1.77"], clock)
    renewed = x509.load_pem_x509_certificates(later.chain.read_bytes())[0]
    assert renewed.not_valid_after_utc > page.not_valid_after_utc and later.fingerprint == first.fingerprint
    assert renewed.not_valid_before_utc <= datetime.datetime.fromtimestamp(clock.time(), datetime.timezone.utc)


def test_damaged_certificate_files_are_one_clear_error(tmp_path):
    certs.ensure(tmp_path, ["box"], ["127.0.0.1"], FakeClock())
    (tmp_path / "tls" / "ca.key").write_text("not a key")
    with pytest.raises(certs.CertificateError, match="damaged.*Move the folder away"):
        certs.ensure(tmp_path, ["box"], ["127.0.0.1"], FakeClock())


# --- the TLS layer under waitress --------------------------------------------------------------------


@pytest.fixture
def tls_server(tmp_path):
    """waitress with :func:`web.tls.serve_tls` around a page of 8 MB (more than any socket buffer)."""
    from waitress.server import create_server

    from web.tls import serve_tls, server_context

    made = certs.ensure(tmp_path, ["localhost"], ["127.0.0.1"], FakeClock(time.time()))
    big = bytes(range(256)) * (8 * 4096)

    def app(environ, start_response):
        body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
        answer = big if environ["PATH_INFO"] == "/big" else body[::-1]
        start_response("200 OK", [("Content-Length", str(len(answer)))])
        return [answer]

    server = create_server(app, host="127.0.0.1", port=0, threads=4, channel_timeout=2, cleanup_interval=1,
                           url_scheme="https")
    serve_tls(server, server_context(str(made.chain), str(made.key)))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    yield server.effective_port, ssl.create_default_context(cafile=str(made.ca)), big
    server.close()
    thread.join(timeout=5)


def test_a_large_answer_to_a_slow_reader_arrives_whole(tls_server):
    port, trust, big = tls_server
    with trust.wrap_socket(socket.create_connection(("127.0.0.1", port), timeout=10),
                           server_hostname="127.0.0.1") as s:
        s.sendall(b"GET /big HTTP/1.1\r\nHost: x\r\n\r\n")
        got = b""
        while len(got) < len(big) + 40:
            data = s.recv(4096)
            if not data:
                break
            got += data
            if len(got) < 256 * 1024:
                time.sleep(0.001)  # slow at first: the box's TLS writes must wait, not fail
        head, _, body = got.partition(b"\r\n\r\n")
        while len(body) < len(big):
            body += s.recv(65536)
    assert head.startswith(b"HTTP/1.1 200") and body == big


def test_keep_alive_requests_and_bodies_round_trip(tls_server):
    port, trust, _ = tls_server
    conn = http.client.HTTPSConnection("127.0.0.1", port, context=trust, timeout=10)
    for size in (0, 1, 16383, 16385, 200_000):  # across TLS record boundaries
        payload = bytes(i % 251 for i in range(size))
        conn.request("POST", "/echo", body=payload)
        answer = conn.getresponse()
        assert answer.read() == payload[::-1]


def test_plain_http_or_a_silent_client_on_the_tls_port_does_not_stop_the_others(tls_server):
    port, trust, _ = tls_server
    silent = socket.create_connection(("127.0.0.1", port), timeout=5)  # opens and says nothing
    with socket.create_connection(("127.0.0.1", port), timeout=5) as plain:
        plain.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        try:
            assert not plain.recv(100).startswith(b"HTTP/")  # not answered in the clear
        except OSError:
            pass  # or reset: either way nothing in the clear
    conn = http.client.HTTPSConnection("127.0.0.1", port, context=trust, timeout=5)
    conn.request("POST", "/echo", body=b"abc")
    assert conn.getresponse().read() == b"cba"
    deadline = time.monotonic() + 10
    silent.settimeout(0.5)
    while time.monotonic() < deadline:  # waitress's idle timeout ends a handshake never begun
        try:
            if silent.recv(1) == b"":
                break
        except TimeoutError:
            continue
        except OSError:
            break
    else:
        pytest.fail("a client that never began its handshake held its connection")
    silent.close()


# --- the settings ------------------------------------------------------------------------------------


def test_tls_settings_are_checked():
    with pytest.raises(ConfigError, match="'web.tls' must be \"auto\""):
        parse('[web]\ntls = "on"\n')
    with pytest.raises(ConfigError, match="'web.redirect_from' sends browsers to an HTTPS page"):
        parse('[web]\ntls = "off"\nredirect_from = "0.0.0.0:80"\n')
    with pytest.raises(ConfigError, match="'web.redirect_from' must be host:port"):
        parse('[web]\nredirect_from = "80"\n')
    assert WebConfig().https and not WebConfig(tls="off").https and not WebConfig(listen="").https


def test_the_demo_stays_on_plain_http_on_this_computer(tmp_path):
    from smsgenie import demo

    config = demo._config(tmp_path, "/dev/null", "", 8080)
    assert config.web.listen == "127.0.0.1:8080" and not config.web.https


def test_the_certificate_command_prints_the_fingerprint_the_box_serves(running, tmp_path):
    from click.testing import CliRunner

    from smsgenie.cli import cli

    box, _ = running
    cfg = tmp_path / "c.toml"
    cfg.write_text(f'data_dir = "{box.config.data_dir}"\n[web]\nlisten = "127.0.0.1:8443"\n', encoding="utf-8")
    out = CliRunner().invoke(cli, ["--config", str(cfg), "certificate"])
    assert out.exit_code == 0, out.output
    assert out.output.splitlines()[1].replace("SHA-256: ", "").replace(" ", "") == box.web.certificates.fingerprint
    from appliance.db import Database

    Database.in_data_dir(tmp_path / "new").close()  # a box that has not run yet
    cfg.write_text(f'data_dir = "{tmp_path / "new"}"\n[web]\nlisten = "127.0.0.1:8443"\n', encoding="utf-8")
    out = CliRunner().invoke(cli, ["--config", str(cfg), "certificate"])
    assert out.exit_code == 1 and "no certificate yet" in out.output and out.output.count("\n") == 1
    cfg.write_text(f'data_dir = "{tmp_path / "new"}"\n[web]\ntls = "off"\n', encoding="utf-8")
    out = CliRunner().invoke(cli, ["--config", str(cfg), "certificate"])
    assert out.exit_code == 1 and "not HTTPS" in out.output


@pytest.mark.parametrize("lang", ["zh_CN", "en"])
def test_the_panel_shows_the_fingerprint_in_fours_that_fit_the_glass(lang):
    from appliance.ui import screens
    from appliance.ui.menu import menu_items
    from tests.test_panel import needs_zenhei

    fingerprint = "CC3272FC51B0EC32BEE23669F442758E83AFCB9DDD3EC6AD2CA478E7B83E51D6"
    shown = screens.certificate(screens.Snapshot(certificate=fingerprint), lang)
    assert shown.lines == ("CC32 72FC 51B0 EC32", "BEE2 3669 F442 758E", "83AF CB9D DD3E C6AD")
    font = needs_zenhei()  # the box's font
    assert all(font.width(line) <= 126 for line in shown.lines)
    assert "Certificate" in menu_items(screens.Snapshot(certificate=fingerprint))
    assert "Certificate" not in menu_items(screens.Snapshot())  # plain HTTP: nothing to check
