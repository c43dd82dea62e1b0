"""deploy/kubernetes/moshi.yaml cannot run here (no cluster); this checks what can be
checked without one: it parses, and its probes, ports and timeouts agree with `moshi serve`."""

from pathlib import Path

import pytest

from moshi.cli.main import get_parser
from moshi.stream.routes import HEALTH_PATH

yaml = pytest.importorskip("yaml")
MANIFEST = Path(__file__).resolve().parents[2] / "deploy" / "kubernetes" / "moshi.yaml"


def test_the_manifests_agree_with_moshi_serve():
    docs = {d["kind"]: d for d in yaml.safe_load_all(MANIFEST.read_text())}
    assert set(docs) == {"Deployment", "Service", "Ingress"}
    pod = docs["Deployment"]["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["args"][:2] == ["moshi", "serve"]
    args = get_parser().parse_args(container["args"][1:])  # the flags exist and parse
    (port,) = container["ports"]
    assert port["containerPort"] == args.port and args.host == "0.0.0.0"
    probe = container["readinessProbe"]["httpGet"]
    assert probe["path"].split("?")[0] == HEALTH_PATH and probe["port"] == port["name"]
    assert pod["terminationGracePeriodSeconds"] > args.drain_seconds  # the drain ends first
    service = docs["Service"]["spec"]
    assert service["selector"] == docs["Deployment"]["spec"]["selector"]["matchLabels"]
    assert service["ports"][0]["targetPort"] == port["name"]
    notes = docs["Ingress"]["metadata"]["annotations"]
    assert int(notes["nginx.ingress.kubernetes.io/proxy-read-timeout"]) >= 3600  # hour-long websockets
