"""The deployment files agree with each other and with the app: the Dockerfile's command is one `trapscope serve`
accepts, the compose file's services refer to files and names that exist, and nginx accepts its configuration
(`nginx -t`, Debian's nginx-light, which `make test` installs; docker itself cannot run here)."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from app.cli import build_parser

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
TEMPLATE = DEPLOY / "nginx" / "trapscope.conf.template"
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
OPENSSL = shutil.which("openssl") or "/usr/bin/openssl"


def _dockerfile() -> dict[str, str]:
    """The Dockerfile's last ENV values, EXPOSE and CMD (continuation lines joined)."""
    text = (ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    found: dict[str, str] = {}
    for line in text.splitlines():
        instruction, _, rest = line.strip().partition(" ")
        if instruction == "ENV":
            for name, value in re.findall(r"(\w+)=(\S+)", rest):
                found[name] = value
        elif instruction in ("EXPOSE", "CMD"):
            found[instruction] = rest.strip()
    return found


def _compose() -> dict:
    return yaml.safe_load((DEPLOY / "compose.yaml").read_text())


def test_the_image_serves_with_the_number_of_workers_its_environment_names():
    docker = _dockerfile()
    shell, flag, script = yaml.safe_load(docker["CMD"])  # exec form: a JSON array
    assert (shell, flag) == ("sh", "-c") and script.startswith("exec trapscope serve ")
    assert re.fullmatch(r"[0-9]+", docker["TRAPSCOPE_WORKERS"])
    argv = shlex.split(script.replace("$TRAPSCOPE_WORKERS", docker["TRAPSCOPE_WORKERS"]))[2:]
    args = build_parser().parse_args(argv)
    assert args.workers == int(docker["TRAPSCOPE_WORKERS"]) == 1, "one worker: a lone container has no Redis"
    assert (args.host, str(args.port)) == ("0.0.0.0", docker["EXPOSE"])


def test_compose_runs_app_replicas_with_several_workers_sharing_rooms_through_its_redis():
    services = _compose()["services"]
    assert set(services) == {"app", "redis", "proxy"}
    app = services["app"]
    assert (DEPLOY / app["build"]["context"] / "Dockerfile").is_file()
    assert re.fullmatch(r"\$\{TRAPSCOPE_REPLICAS:-[2-9]\}", app["deploy"]["replicas"])
    assert re.fullmatch(r"\$\{TRAPSCOPE_WORKERS:-[2-9]\}", app["environment"]["TRAPSCOPE_WORKERS"])
    redis_host = re.fullmatch(r"redis://([a-z]+):6379/0", app["environment"]["TRAPSCOPE_REDIS_URL"]).group(1)
    assert redis_host in services and services[redis_host]["image"].startswith("redis:")
    assert app["depends_on"]["redis"]["condition"] == "service_healthy"
    assert app["expose"] == [_dockerfile()["EXPOSE"]]


def test_compose_puts_nginx_with_the_app_s_template_and_certificates_in_front():
    proxy = _compose()["services"]["proxy"]
    assert proxy["image"].startswith("nginx:") and proxy["ports"] == ["80:80", "443:443"]
    mounts = dict(re.fullmatch(r"(.+?):(/[^:]*)(?::ro)?", volume).groups() for volume in proxy["volumes"])
    assert (DEPLOY / next(k for k, v in mounts.items() if v.startswith("/etc/nginx/templates/"))).resolve() == TEMPLATE
    assert mounts["${TRAPSCOPE_CERTS:-./certs}"] == "/etc/nginx/certs"
    assert "deploy/certs" in (ROOT / ".dockerignore").read_text(), "TLS keys never go into the image"
    template = TEMPLATE.read_text()
    assert "server app:8000;" in template and "/etc/nginx/certs/fullchain.pem" in template
    assert set(re.findall(r"\$\{(\w+)\}", template)) <= set(proxy["environment"]), "every ${VAR} is set"


def test_nginx_keeps_step_fragments_by_what_they_vary_on():
    from app.fragments import KEYED_HEADERS

    template = TEMPLATE.read_text()
    key = re.search(r'proxy_cache_key "([^"]+)";', template).group(1)
    for header in KEYED_HEADERS:
        assert f"$http_{header.replace('-', '_')}" in key
    assert "proxy_set_header Accept-Encoding gzip;" in template and "gunzip on;" in template
    assert "proxy_cache_valid" not in template, "only what the app says is public is kept"


def test_nginx_accepts_the_configuration(tmp_path):
    for tool, package in ((NGINX, "nginx-light"), (OPENSSL, "openssl")):
        if not os.access(tool, os.X_OK):
            pytest.fail(f"{tool} not found: run `make setup-test` (it apt-get installs Debian's {package})")
    certs = tmp_path / "certs"
    certs.mkdir()
    subprocess.run(
        [OPENSSL, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=localhost"]
        + ["-keyout", str(certs / "privkey.pem"), "-out", str(certs / "fullchain.pem")],
        check=True,
        capture_output=True,
    )
    # As the nginx image renders it, with the container's paths moved here and the app's service name (which
    # only compose's DNS knows) replaced by an address.
    conf = (
        TEMPLATE.read_text()
        .replace("${TRAPSCOPE_DOMAIN}", "trapscope.example.edu")
        .replace("server app:8000;", "server 127.0.0.1:8000;")
        .replace("/etc/nginx/certs", str(certs))
        .replace("/var/cache/nginx", str(tmp_path / "cache"))
    )
    (tmp_path / "cache").mkdir()  # the image has /var/cache/nginx
    (tmp_path / "trapscope.conf").write_text(conf)
    main = f"pid {tmp_path}/nginx.pid;\nerror_log {tmp_path}/error.log;\nevents {{}}\n"
    main += f"http {{\n  access_log off;\n  include {tmp_path}/trapscope.conf;\n}}\n"
    (tmp_path / "nginx.conf").write_text(main)
    checked = subprocess.run(
        [NGINX, "-t", "-p", str(tmp_path), "-c", str(tmp_path / "nginx.conf")], capture_output=True, text=True
    )
    assert checked.returncode == 0, checked.stderr
    assert "test is successful" in checked.stderr
