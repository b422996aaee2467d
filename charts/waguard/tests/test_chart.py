#!/usr/bin/env python3
"""Chart tests for charts/waguard, with real Helm and the real gateway binary.

For each value combination below: render the chart with Helm's own engine (helm-python-sdk),
validate every object strictly against the Kubernetes OpenAPI schemas (kubernetes-validate),
check what the pod is given (security context, probes, mounts, references between objects),
and run `waguard check-config` on the rendered waguard.toml with the pod paths mapped to a
temporary folder holding the callers file and policy the pod would see.

    cargo test --test helm_chart        # provisions the packages in target/tmp/pyenv, runs this
    target/tmp/pyenv/bin/python charts/waguard/tests/test_chart.py   # WAGUARD_BIN: target/debug/waguard

Prints one line per case, then "N passed, M failed"; exits non-zero on any failure.
"""

from __future__ import annotations

import base64
import os
import subprocess
import sys
import tempfile
import tomllib
import traceback
from pathlib import Path
from typing import Any, Callable

CHART = Path(__file__).resolve().parents[1]
REPO = CHART.parents[1]
DEMO_CALLERS = REPO / "examples" / "demo" / "callers.toml"
REPO_POLICIES = REPO / "policies"
RELEASE, NAMESPACE = "waguard", "waguard"
AUDIT_SIGNING_DIR = "/etc/waguard/audit-signing"
IDENTITY_KEYS_DIR = "/etc/waguard/identity-keys"
SCAN_NAME = f"{RELEASE}-scan"
SCAN_AUDIT_DIR = "/var/lib/waguard-scan"
# Oldest Kubernetes the chart supports (Chart.yaml kubeVersion) and the newest schema we have.
KUBE_VERSIONS = ("1.30", "1.37")
EXIT_MISSING_PACKAGES = 3

try:
    import helm_python as helm
    import kubernetes_validate
    import yaml
except ImportError as e:
    print(
        f"chart tests need Python packages that are missing ({e.name}): "
        "run `cargo test --test helm_chart`, which provisions them in target/tmp/pyenv",
        file=sys.stderr,
    )
    sys.exit(EXIT_MISSING_PACKAGES)


class Rendered:
    """One render of the chart: objects by kind and name, and the NOTES text."""

    def __init__(self, manifests: dict[str, str]):
        self.notes = ""
        self.objects: list[dict[str, Any]] = []
        for template, text in sorted(manifests.items()):
            if template.endswith("NOTES.txt"):
                self.notes = text
                continue
            for doc in yaml.safe_load_all(text):
                if doc:
                    doc["_template"] = template
                    self.objects.append(doc)

    def all(self, kind: str) -> list[dict[str, Any]]:
        return [o for o in self.objects if o["kind"] == kind]

    def one(self, kind: str, name: str | None = None) -> dict[str, Any]:
        found = [o for o in self.all(kind) if name is None or o["metadata"]["name"] == name]
        assert len(found) == 1, f"expected one {kind} {name or ''}, found {len(found)}"
        return found[0]

    def names(self, kind: str) -> set[str]:
        return {o["metadata"]["name"] for o in self.all(kind)}

    @property
    def deployment(self) -> dict[str, Any]:
        return self.one("Deployment")

    @property
    def pod(self) -> dict[str, Any]:
        return self.deployment["spec"]["template"]["spec"]

    @property
    def gateway(self) -> dict[str, Any]:
        return container(self.pod, "waguard")

    @property
    def toml_text(self) -> str:
        return self.one("ConfigMap", RELEASE)["data"]["waguard.toml"]

    @property
    def config(self) -> dict[str, Any]:
        return tomllib.loads(self.toml_text)

    @property
    def gateway_policy_from_image(self) -> bool:
        return not any(m["name"] in ("policies", "git") for m in self.gateway["volumeMounts"])

    @property
    def scan_cronjob(self) -> dict[str, Any]:
        return self.one("CronJob", SCAN_NAME)

    @property
    def scan_pod(self) -> dict[str, Any]:
        return self.scan_cronjob["spec"]["jobTemplate"]["spec"]["template"]["spec"]

    @property
    def scan(self) -> dict[str, Any]:
        return container(self.scan_pod, "scan")

    @property
    def scan_toml_text(self) -> str:
        """The waguard.toml the scan container reads, from the ConfigMap its config volume names."""
        vol = next(v for v in self.scan_pod["volumes"] if v["name"] == "config")["configMap"]
        return self.one("ConfigMap", vol["name"])["data"]["waguard.toml"]

    @property
    def scan_config(self) -> dict[str, Any]:
        return tomllib.loads(self.scan_toml_text)


def container(pod: dict[str, Any], name: str, init: bool = False) -> dict[str, Any]:
    found = [c for c in pod.get("initContainers" if init else "containers", []) if c["name"] == name]
    assert len(found) == 1, f"expected one {'init ' if init else ''}container {name}, found {len(found)}"
    return found[0]


def render(values: dict[str, Any]) -> Rendered:
    with helm.Chart.load(CHART) as chart:
        return Rendered(chart.render(values=values, name=RELEASE, namespace=NAMESPACE))


# --------------------------------------------------------------------------------------------
# Checks every successful render must pass
# --------------------------------------------------------------------------------------------


def check_schemas(r: Rendered) -> None:
    for obj in r.objects:
        doc = {k: v for k, v in obj.items() if k != "_template"}
        name = f"{obj['kind']}/{obj['metadata']['name']}"
        assert obj["metadata"].get("namespace") == NAMESPACE, f"{name}: no namespace"
        for version in KUBE_VERSIONS:
            try:
                kubernetes_validate.validate(doc, version, strict=True)
            except kubernetes_validate.SchemaNotFoundError:
                # CRDs have no schema in the package; they get their own checks.
                assert obj["apiVersion"].startswith("monitoring.coreos.com/"), (
                    f"{name}: no Kubernetes {version} schema for {obj['apiVersion']}"
                )
            except kubernetes_validate.ValidationError as e:
                path = ".".join(str(p) for p in e.path)
                raise AssertionError(f"{name} invalid for Kubernetes {version}: {path}: {e.message}")


def check_hardening(r: Rendered) -> None:
    check_pod_hardening(r.pod)
    for cronjob in r.all("CronJob"):
        check_pod_hardening(cronjob["spec"]["jobTemplate"]["spec"]["template"]["spec"])


def check_pod_hardening(pod: dict[str, Any]) -> None:
    psc = pod["securityContext"]
    assert psc["runAsNonRoot"] is True, "pod runAsNonRoot"
    assert psc["runAsUser"] != 0, "pod runs as root"
    assert psc.get("seccompProfile") == {"type": "RuntimeDefault"}, "pod seccomp"
    assert pod["automountServiceAccountToken"] is False, "Kubernetes API token mounted"
    for c in pod["containers"] + pod.get("initContainers", []):
        sc = c.get("securityContext", {})
        where = f"container {c['name']}"
        assert sc.get("readOnlyRootFilesystem") is True, f"{where}: root filesystem writable"
        assert sc.get("allowPrivilegeEscalation") is False, f"{where}: privilege escalation"
        assert sc.get("capabilities") == {"drop": ["ALL"]}, f"{where}: capabilities {sc.get('capabilities')}"
        assert sc.get("runAsNonRoot") is True, f"{where}: runAsNonRoot"
        assert sc.get("seccompProfile") == {"type": "RuntimeDefault"}, f"{where}: seccomp"
        assert sc.get("runAsUser", psc["runAsUser"]) != 0, f"{where}: runs as root"
        res = c["resources"]
        assert res.get("requests", {}).get("memory") and res.get("limits", {}).get("memory"), (
            f"{where}: memory request/limit missing"
        )


def port_of(address: str) -> int:
    return int(address.rsplit(":", 1)[1])


def check_probes_and_shutdown(r: Rendered) -> None:
    gw, cfg = r.gateway, r.config
    ports = {p["name"]: p["containerPort"] for p in gw["ports"]}
    assert ports["api"] == port_of(cfg["server"]["listen"]), "api port differs from server.listen"
    assert ports["admin"] == port_of(cfg["server"]["admin_listen"]), "admin port differs from admin_listen"
    for probe, path in (("startupProbe", "/healthz"), ("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")):
        get = gw[probe]["httpGet"]
        assert get == {"path": path, "port": "admin"}, f"{probe}: {get}"
        assert gw[probe]["periodSeconds"] >= 1 and gw[probe]["timeoutSeconds"] >= 1
    sleep = gw["lifecycle"]["preStop"]["sleep"]["seconds"]
    grace = cfg["server"].get("shutdown_grace", 20)
    tgps = r.pod["terminationGracePeriodSeconds"]
    assert tgps > sleep + grace, f"terminationGracePeriodSeconds {tgps} <= preStop {sleep} + shutdown_grace {grace}"


def mount_covering(gw: dict[str, Any], path: str) -> dict[str, Any] | None:
    best = None
    for m in gw["volumeMounts"]:
        mp = m["mountPath"].rstrip("/")
        if path == mp or path.startswith(mp + "/"):
            if best is None or len(mp) > len(best["mountPath"]):
                best = m
    return best


def config_paths(cfg: dict[str, Any]) -> dict[str, str]:
    paths = {
        "callers.file": cfg["callers"]["file"],
        "policy.dir": cfg["policy"]["dir"],
        "audit.file": cfg["audit"]["file"],
    }
    for key in ("tls_cert_file", "tls_key_file"):
        if key in cfg["server"]:
            paths[f"server.{key}"] = cfg["server"][key]
    if "signing_key_file" in cfg["audit"]:
        paths["audit.signing_key_file"] = cfg["audit"]["signing_key_file"]
    for i, path in enumerate(cfg.get("identity", {}).get("key_files", [])):
        paths[f"identity.key_files[{i}]"] = path
    return paths


def check_references(r: Rendered, values: dict[str, Any], external_secrets: set[str]) -> None:
    pod, gw = r.pod, r.gateway
    volumes = {v["name"]: v for v in pod["volumes"]}
    for c in pod["containers"] + pod.get("initContainers", []):
        for m in c["volumeMounts"]:
            assert m["name"] in volumes, f"{c['name']} mounts unknown volume {m['name']}"
    # The config file itself, and every path it names, is inside a mount of the gateway.
    cfg_mount = mount_covering(gw, gw["args"][-1])
    assert cfg_mount and cfg_mount["name"] == "config", f"config file {gw['args'][-1]} not mounted"
    from_image = values.get("policies", {}).get("source") == "image"
    for key, path in config_paths(r.config).items():
        m = mount_covering(gw, path)
        if key == "policy.dir" and from_image:
            assert m is None, f"policy.dir {path} is shadowed by mount {m and m['mountPath']}"
            continue
        assert m is not None, f"{key} = {path} is not under any volume mount"
        writable = key == "audit.file"
        assert bool(m.get("readOnly")) != writable, f"{key}: mount {m['mountPath']} readOnly={m.get('readOnly')}"
    for v in volumes.values():
        if "configMap" in v:
            assert v["configMap"]["name"] in r.names("ConfigMap"), f"volume {v['name']}: no ConfigMap"
        if "secret" in v:
            name = v["secret"]["secretName"]
            assert name in r.names("Secret") | external_secrets, f"volume {v['name']}: unexpected Secret {name}"
        if "persistentVolumeClaim" in v:
            claim = v["persistentVolumeClaim"]["claimName"]
            assert claim in r.names("PersistentVolumeClaim") | external_secrets, f"claim {claim}"
    # Selectors reach the pods; Service ports reach named container ports.
    labels = r.deployment["spec"]["template"]["metadata"]["labels"]
    selector = r.deployment["spec"]["selector"]["matchLabels"]
    assert selector.items() <= labels.items(), "Deployment selector does not match its pods"
    svc = r.one("Service")
    assert svc["spec"]["selector"].items() <= labels.items(), "Service selector misses the pods"
    names = {p["name"] for p in gw["ports"]}
    for p in svc["spec"]["ports"]:
        assert p["targetPort"] in names, f"Service port {p['name']} targets unknown {p['targetPort']}"
    for kind in ("PodDisruptionBudget", "NetworkPolicy"):
        for o in r.all(kind):
            if o["metadata"]["name"] == SCAN_NAME:
                continue  # the scan pods' own NetworkPolicy: checked by expect_scan_*
            key = "podSelector" if kind == "NetworkPolicy" else "selector"
            assert o["spec"][key]["matchLabels"].items() <= labels.items(), f"{kind} misses the pods"
    sa = r.pod["serviceAccountName"]
    assert sa in r.names("ServiceAccount"), f"ServiceAccount {sa} not rendered"
    assert "checksum/config" in r.deployment["spec"]["template"]["metadata"]["annotations"]
    assert "AWS_ENDPOINT_URL_WELLARCHITECTED=" in r.notes, "NOTES.txt does not tell how to point an SDK"


def waguard_binary() -> str:
    binary = os.environ.get("WAGUARD_BIN", str(REPO / "target" / "debug" / "waguard"))
    assert Path(binary).is_file(), f"{binary} not found: run `cargo build` or set WAGUARD_BIN"
    return binary


def check_config_with_binary(r: Rendered, toml_text: str | None = None) -> str:
    """Runs `waguard check-config` on the rendered waguard.toml (or `toml_text`, another config
    the chart renders), pod paths mapped to a temp dir holding what the gateway pod would see."""
    text = r.toml_text if toml_text is None else toml_text
    cfg = tomllib.loads(text)
    assert isinstance(cfg["server"].get("max_body_bytes", 0), int), "max_body_bytes rendered as a float"
    binary = waguard_binary()
    with tempfile.TemporaryDirectory(prefix="waguard-chart-") as tmp:
        root = Path(tmp)
        mapped: dict[str, Path] = {}
        callers_vol = next(v for v in r.pod["volumes"] if v["name"] == "callers")["secret"]
        secret = [s for s in r.all("Secret") if s["metadata"]["name"] == callers_vol["secretName"]]
        callers = root / "callers" / Path(cfg["callers"]["file"]).name
        callers.parent.mkdir()
        if secret:  # chart-created from values: the pod sees exactly this
            key = callers_vol["items"][0]["key"]
            callers.write_bytes(base64.b64decode(secret[0]["data"][key]))
        else:
            callers.write_bytes(DEMO_CALLERS.read_bytes())
        mapped[cfg["callers"]["file"]] = callers

        policy_vol = next((v for v in r.pod["volumes"] if v["name"] == "policies"), None)
        if policy_vol:  # materialize the policy ConfigMap as its volume lays it out
            cm = r.one("ConfigMap", policy_vol["configMap"]["name"])
            for item in policy_vol["configMap"]["items"]:
                dest = root / "policies" / item["path"]
                dest.parent.mkdir(parents=True, exist_ok=True)
                dest.write_text(cm["data"][item["key"]])
            mapped[cfg["policy"]["dir"]] = root / "policies"
        else:  # git-sync or the image's copy: the repository's default policy stands in
            mapped[cfg["policy"]["dir"]] = REPO_POLICIES
        (root / "audit").mkdir()
        mapped[cfg["audit"]["file"]] = root / "audit" / "audit.jsonl"
        for key in ("tls_cert_file", "tls_key_file"):
            if key in cfg["server"]:
                dest = root / "tls" / Path(cfg["server"][key]).name
                dest.parent.mkdir(exist_ok=True)
                dest.write_text("placeholder: check-config does not load TLS files\n")
                mapped[cfg["server"][key]] = dest
        signing_key = cfg["audit"].get("signing_key_file")
        if signing_key:  # check-config loads the signer key: place a real one where the Secret would be
            keygen_dir = root / "keygen"
            keygen_dir.mkdir()
            run = subprocess.run(
                [binary, "audit", "keygen", "--name", cfg["audit"]["log_name"], str(keygen_dir / "audit-signing")],
                capture_output=True, text=True, timeout=60,
            )
            assert run.returncode == 0, f"waguard audit keygen failed ({run.returncode}): {run.stdout}{run.stderr}"
            dest = root / "audit-signing" / Path(signing_key).name
            dest.parent.mkdir()
            dest.write_bytes((keygen_dir / "audit-signing.key").read_bytes())
            dest.chmod(0o400)
            mapped[signing_key] = dest
        # Session keys, as the Secret would hold them (>= 32 random bytes). check-config checks
        # [identity] without reading them today; the gateway reads them at start, so they are real.
        for key_file in cfg.get("identity", {}).get("key_files", []):
            dest = root / "identity-keys" / Path(key_file).name
            dest.parent.mkdir(exist_ok=True)
            dest.write_bytes(os.urandom(32))
            dest.chmod(0o400)
            mapped[key_file] = dest
        for pod_path, local in mapped.items():
            quoted = f'"{pod_path}"'
            assert quoted in text, f"{pod_path} not found verbatim in waguard.toml"
            text = text.replace(quoted, f'"{local}"')
        conf = root / "waguard.toml"
        conf.write_text(text)
        run = subprocess.run(
            [binary, "check-config", "--config", str(conf)],
            capture_output=True, text=True, timeout=60,
        )
        out = (run.stdout + run.stderr).strip()
        assert run.returncode == 0, f"waguard check-config failed ({run.returncode}): {out}\n--- waguard.toml\n{text}"
        assert ": ok (" in run.stdout, f"unexpected check-config output: {out}"
        if signing_key:
            public = (root / "keygen" / "audit-signing.pub").read_text().strip()
            assert f"audit checkpoints signed by {public}" in run.stdout, (
                f"check-config did not load the signer key: {out}"
            )
        else:
            assert "audit checkpoints off" in run.stdout, f"unexpected check-config output: {out}"
        return run.stdout.strip().replace(str(root), "<tmp>")


# --------------------------------------------------------------------------------------------
# The value combinations
# --------------------------------------------------------------------------------------------

DEMO_CALLERS_TEXT = DEMO_CALLERS.read_text()
FAKE_PEM_CERT = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"
FAKE_PEM_KEY = "-----BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY-----\n"


def expect_defaults(r: Rendered) -> None:
    d = r.deployment
    assert d["spec"]["replicas"] == 2
    assert "initContainers" not in r.pod and [c["name"] for c in r.pod["containers"]] == ["waguard"]
    assert r.gateway["args"] == ["serve", "--config", "/etc/waguard/waguard.toml"]
    assert r.names("Secret") == set(), "no Secret is created by default"
    callers = next(v for v in r.pod["volumes"] if v["name"] == "callers")
    assert callers["secret"]["secretName"] == "waguard-callers"
    policies = next(v for v in r.pod["volumes"] if v["name"] == "policies")
    paths = {i["path"] for i in policies["configMap"]["items"]}
    assert {"waguard/authz.rego", "waguard/teams.json"} <= paths, paths
    assert r.config["audit"]["stdout"] is True
    # No signer key without audit.signing.existingSecret: no volume, no mount, no config key.
    assert "signing_key_file" not in r.config["audit"], r.config["audit"]
    assert r.config["audit"]["log_name"] == "waguard"
    assert not any(v["name"] == "audit-signing" or "secret" in v and v["secret"]["secretName"] != "waguard-callers"
                   for v in r.pod["volumes"]), r.pod["volumes"]
    assert mount_covering(r.gateway, f"{AUDIT_SIGNING_DIR}/audit-signing.key") is None, "signer key mounted"
    # No session keys without identity.keys.existingSecret, and no [identity] table at all.
    assert "identity" not in r.config, r.config.get("identity")
    assert mount_covering(r.gateway, f"{IDENTITY_KEYS_DIR}/key-1") is None, "session keys mounted"
    assert "No signed checkpoints" in r.notes
    assert r.pod["terminationGracePeriodSeconds"] == 5 + 20 + 5
    assert r.one("PodDisruptionBudget")["spec"] == {
        "maxUnavailable": 1,
        "selector": {"matchLabels": {"app.kubernetes.io/name": "waguard", "app.kubernetes.io/instance": RELEASE}},
    }
    ports = {p["name"]: p["port"] for p in r.one("Service")["spec"]["ports"]}
    assert ports == {"http": 80, "admin": 9090}, ports
    for kind in ("HorizontalPodAutoscaler", "NetworkPolicy", "ServiceMonitor", "PersistentVolumeClaim", "CronJob"):
        assert not r.all(kind), f"{kind} rendered by default"
    assert r.names("ConfigMap") == {RELEASE, f"{RELEASE}-policies"}, r.names("ConfigMap")
    assert "Drift scan" not in r.notes
    assert "AWS_ENDPOINT_URL_WELLARCHITECTED=http://waguard.waguard.svc.cluster.local\n" in r.notes


def expect_irsa_and_inline_callers(r: Rendered) -> None:
    sa = r.one("ServiceAccount")
    assert sa["metadata"]["annotations"] == {"eks.amazonaws.com/role-arn": "arn:aws:iam::123456789012:role/waguard"}
    secret = r.one("Secret", "waguard-callers")
    assert base64.b64decode(secret["data"]["callers.toml"]).decode() == DEMO_CALLERS_TEXT
    ann = r.deployment["spec"]["template"]["metadata"]["annotations"]
    assert "checksum/callers" in ann, "callers Secret change would not roll the pods"
    env = {e["name"]: e.get("value") for e in r.gateway["env"]}
    assert env["AWS_REGION"] == "eu-west-1"
    assert not any(k.startswith("AWS_ACCESS_KEY") or k.startswith("AWS_SECRET") for k in env)


def expect_existing_secret(r: Rendered) -> None:
    assert not r.all("Secret")
    vol = next(v for v in r.pod["volumes"] if v["name"] == "callers")["secret"]
    assert vol["secretName"] == "team-callers" and vol["items"] == [{"key": "keys.toml", "path": "keys.toml"}]
    assert vol["defaultMode"] == 0o440, "caller keys readable by others"
    assert r.config["callers"]["file"] == "/etc/waguard/callers/keys.toml"
    assert "checksum/callers" not in r.deployment["spec"]["template"]["metadata"]["annotations"]


def expect_tls(r: Rendered) -> None:
    secret = r.one("Secret", "waguard-tls")
    assert secret["type"] == "kubernetes.io/tls"
    assert base64.b64decode(secret["data"]["tls.crt"]).decode() == FAKE_PEM_CERT
    assert r.config["server"]["tls_cert_file"] == "/etc/waguard/tls/tls.crt"
    assert r.config["server"]["tls_key_file"] == "/etc/waguard/tls/tls.key"
    ports = {p["name"]: p["port"] for p in r.one("Service")["spec"]["ports"]}
    assert ports == {"https": 443, "admin": 9090}, ports
    assert "checksum/tls" in r.deployment["spec"]["template"]["metadata"]["annotations"]
    assert "AWS_ENDPOINT_URL_WELLARCHITECTED=https://waguard.waguard.svc.cluster.local\n" in r.notes


def expect_tls_existing_secret(r: Rendered) -> None:
    assert not r.all("Secret")
    vol = next(v for v in r.pod["volumes"] if v["name"] == "tls")
    assert vol["secret"]["secretName"] == "waguard-cert-manager"
    assert "AWS_ENDPOINT_URL_WELLARCHITECTED=https://waguard.waguard.svc.cluster.local:8443\n" in r.notes


def expect_git_sync(r: Rendered) -> None:
    assert "waguard-policies" not in r.names("ConfigMap"), "policy ConfigMap rendered with git-sync"
    init = container(r.pod, "git-sync-init", init=True)
    side = container(r.pod, "git-sync")
    root = "/var/run/waguard/git"
    for c in (init, side):
        assert c["image"] == "registry.k8s.io/git-sync/git-sync:v4.4.0"
        args = c["args"]
        for a in ("--repo=git@github.com:example/waguard-policies.git", "--ref=release",
                  f"--root={root}", "--link=current", "--ssh-key-file=/etc/git-secret/ssh"):
            assert a in args, f"{c['name']}: {a} missing from {args}"
        mounts = {m["name"]: m for m in c["volumeMounts"]}
        assert mounts["git"]["mountPath"] == root and not mounts["git"].get("readOnly")
        assert mounts["git-secret"]["readOnly"] is True
    assert "--one-time" in init["args"] and "--one-time" not in side["args"]
    assert r.config["policy"]["dir"] == f"{root}/current/policies"
    gw_git = next(m for m in r.gateway["volumeMounts"] if m["name"] == "git")
    assert gw_git["mountPath"] == root and gw_git["readOnly"] is True
    secret = next(v for v in r.pod["volumes"] if v["name"] == "git-secret")["secret"]
    assert secret["secretName"] == "policy-repo-ssh"
    # SSH to the git host is let through the NetworkPolicy.
    egress = r.one("NetworkPolicy")["spec"]["egress"]
    assert any(rule.get("ports") == [{"port": 22, "protocol": "TCP"}] for rule in egress), egress


def expect_network_policy(r: Rendered) -> None:
    np = r.one("NetworkPolicy")["spec"]
    assert np["policyTypes"] == ["Ingress", "Egress"]
    egress = np["egress"]
    ports = sorted((p["port"], p["protocol"]) for rule in egress for p in rule["ports"])
    assert ports == [(53, "TCP"), (53, "UDP"), (80, "TCP"), (443, "TCP")], ports
    https = next(rule for rule in egress if rule["ports"] == [{"port": 443, "protocol": "TCP"}])
    assert https["to"] == [{"ipBlock": {"cidr": "10.0.0.0/16"}}]
    agent = next(rule for rule in egress if rule["ports"] == [{"port": 80, "protocol": "TCP"}])
    assert agent["to"] == [{"ipBlock": {"cidr": "169.254.170.23/32"}}]
    ingress = {rule["ports"][0]["port"]: rule.get("from") for rule in np["ingress"]}
    assert ingress["api"] is None
    assert ingress["admin"] == [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}}]


def expect_service_monitor(r: Rendered) -> None:
    sm = r.one("ServiceMonitor")
    assert sm["apiVersion"] == "monitoring.coreos.com/v1"
    assert sm["metadata"]["labels"]["release"] == "prometheus"
    svc = r.one("Service")
    assert sm["spec"]["selector"]["matchLabels"].items() <= svc["metadata"]["labels"].items()
    assert sm["spec"]["namespaceSelector"] == {"matchNames": [NAMESPACE]}
    (endpoint,) = sm["spec"]["endpoints"]
    assert endpoint["port"] in {p["name"] for p in svc["spec"]["ports"]} and endpoint["port"] == "admin"
    assert endpoint["path"] == "/metrics"


def expect_hpa_and_pdb(r: Rendered) -> None:
    assert "replicas" not in r.deployment["spec"], "replicas set while the HPA owns them"
    hpa = r.one("HorizontalPodAutoscaler")["spec"]
    assert hpa["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": r.deployment["metadata"]["name"]}
    assert (hpa["minReplicas"], hpa["maxReplicas"]) == (3, 12)
    targets = {m["resource"]["name"]: m["resource"]["target"]["averageUtilization"] for m in hpa["metrics"]}
    assert targets == {"cpu": 60, "memory": 80}, targets
    pdb = r.one("PodDisruptionBudget")["spec"]
    assert pdb["minAvailable"] == 2 and "maxUnavailable" not in pdb


def expect_audit_pvc(r: Rendered) -> None:
    pvc = r.one("PersistentVolumeClaim", "waguard-audit")
    assert pvc["metadata"]["annotations"] == {"helm.sh/resource-policy": "keep"}
    assert pvc["spec"]["accessModes"] == ["ReadWriteMany"] and pvc["spec"]["storageClassName"] == "efs-sc"
    audit = next(m for m in r.gateway["volumeMounts"] if m["name"] == "audit")
    assert audit["subPathExpr"] == "$(POD_NAME)", "replicas would share one audit chain"
    env = {e["name"]: e for e in r.gateway["env"]}
    assert env["POD_NAME"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"
    assert r.config["audit"]["stdout"] is False


def expect_signed_checkpoints(r: Rendered) -> None:
    vol = next(v for v in r.pod["volumes"] if v["name"] == "audit-signing")["secret"]
    assert vol == {"secretName": "waguard-audit-signing", "defaultMode": 0o440,
                   "items": [{"key": "audit-signing.key", "path": "audit-signing.key"}]}, vol
    mount = next(m for m in r.gateway["volumeMounts"] if m["name"] == "audit-signing")
    assert mount == {"name": "audit-signing", "mountPath": AUDIT_SIGNING_DIR, "readOnly": True}, mount
    audit = r.config["audit"]
    assert audit["signing_key_file"] == f"{AUDIT_SIGNING_DIR}/audit-signing.key", audit
    assert mount_covering(r.gateway, audit["signing_key_file"]) == mount, "signer key outside its mount"
    assert audit["log_name"] == "waguard-prod"
    assert audit["checkpoint_interval"] == 5 and isinstance(audit["checkpoint_interval"], int)
    assert audit["stdout_buffer_bytes"] == 1048576 and audit["stdout"] is True
    # The key is mounted in the gateway only, never in another container.
    assert all(m["name"] != "audit-signing" for c in r.pod["containers"][1:] for m in c["volumeMounts"])
    assert "Signed checkpoints (log waguard-prod) with the key from Secret waguard-audit-signing" in r.notes


def expect_signed_checkpoints_custom_key(r: Rendered) -> None:
    vol = next(v for v in r.pod["volumes"] if v["name"] == "audit-signing")["secret"]
    assert vol["secretName"] == "audit-keys" and vol["items"] == [{"key": "signer.key", "path": "signer.key"}]
    audit = r.config["audit"]
    assert audit["signing_key_file"] == f"{AUDIT_SIGNING_DIR}/signer.key"
    assert audit["log_name"] == "audit.example.internal", "config.audit.log_name must win over audit.signing.logName"
    audit_mount = next(m for m in r.gateway["volumeMounts"] if m["name"] == "audit")
    assert audit_mount["subPathExpr"] == "$(POD_NAME)"


def expect_identity(r: Rendered) -> None:
    vol = next(v for v in r.pod["volumes"] if v["name"] == "identity-keys")["secret"]
    assert vol == {"secretName": "waguard-identity-keys", "defaultMode": 0o440,
                   "items": [{"key": "key-2026-11", "path": "key-2026-11"},
                             {"key": "key-2026-05", "path": "key-2026-05"}]}, vol
    mount = next(m for m in r.gateway["volumeMounts"] if m["name"] == "identity-keys")
    assert mount == {"name": "identity-keys", "mountPath": IDENTITY_KEYS_DIR, "readOnly": True}, mount
    identity = r.config["identity"]
    # In the order of identity.keys.items: the first signs new sessions.
    assert identity["key_files"] == [f"{IDENTITY_KEYS_DIR}/key-2026-11", f"{IDENTITY_KEYS_DIR}/key-2026-05"], identity
    assert all(mount_covering(r.gateway, f) == mount for f in identity["key_files"]), "session key outside its mount"
    assert identity["enabled"] is True
    assert identity["server_id"] == "waguard.example.internal"
    assert identity["session_duration"] == 7200 and isinstance(identity["session_duration"], int)
    assert identity["sts_endpoint"] == "https://sts.eu-west-1.amazonaws.com"
    # The keys are mounted in the gateway only: not in the git-sync sidecar or its init container.
    others = [c for c in r.pod["containers"] + r.pod.get("initContainers", []) if c["name"] != "waguard"]
    assert {c["name"] for c in others} == {"git-sync", "git-sync-init"}, [c["name"] for c in others]
    assert all(m["name"] != "identity-keys" for c in others for m in c["volumeMounts"]), "session keys in a sidecar"
    assert "Callers may sign in with their AWS identity" in r.notes, r.notes


def expect_image_policy(r: Rendered) -> None:
    assert "waguard-policies" not in r.names("ConfigMap")
    assert not any(m["name"] in ("policies", "git") for m in r.gateway["volumeMounts"])
    assert r.config["policy"]["dir"] == "/etc/waguard/policies"


def expect_config_passthrough(r: Rendered) -> None:
    cfg = r.config
    assert cfg["server"]["max_body_bytes"] == 2097152
    assert cfg["server"]["shutdown_grace"] == 12.5
    assert cfg["server"]["max_in_flight"] == 64
    assert cfg["limits"] == {"per_caller_rate": 10, "per_team_rate": 2.5, "per_team_burst": 20,
                             "operations": {"CreateTemplateShare": {"per_caller_rate": 0.2,
                                                                    "per_caller_burst": 5}}}
    assert cfg["upstream"]["allowed_regions"] == ["us-east-1", "eu-west-1"]
    assert cfg["upstream"]["endpoint"] == "https://wellarchitected.us-east-1.amazonaws.com"
    assert cfg["organizations"] == {"enabled": True, "refresh_interval": 600,
                                    "role_arn": "arn:aws:iam::111111111111:role/waguard-org-read"}
    assert r.pod["terminationGracePeriodSeconds"] == 2 + 13 + 5
    assert r.gateway["lifecycle"]["preStop"]["sleep"]["seconds"] == 2
    assert cfg["server"]["listen"] == "[::]:8080" and cfg["server"]["admin_listen"] == "[::]:9090"


def expect_inline_policy(r: Rendered) -> None:
    cm = r.one("ConfigMap", "waguard-policies")
    assert set(cm["data"]) == {"waguard__authz.rego", "waguard__teams.json"}
    assert "checksum/policies" in r.deployment["spec"]["template"]["metadata"]["annotations"]


# Gateway volumes that hold what `waguard scan` never reads; none of them may reach the scan job.
GATEWAY_ONLY_VOLUMES = ("callers", "tls", "identity-keys", "audit-signing", "audit")


def volume_source(volume: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in volume.items() if k != "name"}


def check_scan_job(r: Rendered, revoke: bool) -> None:
    """What every drift-scan CronJob must be: the gateway's AWS role, image, hardening and policy,
    failing visibly, and nothing else of the gateway's."""
    cronjob = r.scan_cronjob
    assert cronjob["apiVersion"] == "batch/v1", cronjob["apiVersion"]
    assert cronjob["spec"]["concurrencyPolicy"] == "Forbid", "two scans could run at once"
    job = cronjob["spec"]["jobTemplate"]["spec"]
    pod, scan = r.scan_pod, r.scan
    assert pod["restartPolicy"] == "Never", "a failed scan would restart in place instead of failing the Job"
    assert [c["name"] for c in pod["containers"]] == ["scan"], "a sidecar would keep the Job from finishing"
    # The gateway's ServiceAccount (its AWS role), image and security contexts.
    assert pod["serviceAccountName"] == r.pod["serviceAccountName"]
    assert pod["automountServiceAccountToken"] is False, "Kubernetes API token mounted"
    assert (scan["image"], scan["imagePullPolicy"]) == (r.gateway["image"], r.gateway["imagePullPolicy"])
    assert scan["securityContext"] == r.gateway["securityContext"]
    assert pod["securityContext"] == r.pod["securityContext"]
    gw_env = {e["name"]: e for e in r.gateway["env"] if e["name"] != "POD_NAME"}
    assert {e["name"]: e for e in scan.get("env", [])} == gw_env, "AWS environment differs from the gateway's"
    # Scan pods are never picked by the gateway's Deployment, Service, PDB or NetworkPolicy.
    labels = job["template"]["metadata"]["labels"]
    selectors = [r.deployment["spec"]["selector"]["matchLabels"], r.one("Service")["spec"]["selector"]]
    selectors += [o["spec"]["selector"]["matchLabels"] for o in r.all("PodDisruptionBudget")]
    selectors += [o["spec"]["podSelector"]["matchLabels"] for o in r.all("NetworkPolicy")
                  if o["metadata"]["name"] != SCAN_NAME]
    for selector in selectors:
        assert not selector.items() <= labels.items(), f"scan pods match the gateway's selector {selector}"
    args = scan["args"]
    assert args[:3] == ["scan", "--config", "/etc/waguard/waguard.toml"], args
    assert args[args.index("--format") + 1] in ("json", "table"), args
    assert ("--revoke" in args) == revoke, args
    # Every mount names a volume; the config file is the config volume's, read-only.
    volumes = {v["name"]: v for v in pod["volumes"]}
    mounts = {m["name"]: m for m in scan["volumeMounts"]}
    for c in pod["containers"] + pod.get("initContainers", []):
        for m in c["volumeMounts"]:
            assert m["name"] in volumes, f"{c['name']} mounts unknown volume {m['name']}"
    config_mount = mount_covering(scan, args[2])
    assert config_mount and config_mount["name"] == "config" and config_mount["readOnly"] is True, config_mount
    assert volumes["config"]["configMap"]["name"] in r.names("ConfigMap")
    cfg = r.scan_config
    # The policy exactly as the gateway has it: same volumes, same mount, read-only.
    gw_volumes = {v["name"]: v for v in r.pod["volumes"]}
    gw_mounts = {m["name"]: m for m in r.gateway["volumeMounts"]}
    for name in ("policies", "git", "git-tmp", "git-secret"):
        assert volumes.get(name) == gw_volumes.get(name), f"policy volume {name} differs from the gateway's"
    for name in ("policies", "git"):
        assert mounts.get(name) == gw_mounts.get(name), f"policy mount {name} differs from the gateway's"
    assert cfg["policy"]["dir"] == r.config["policy"]["dir"]
    policy_mount = mount_covering(scan, cfg["policy"]["dir"])
    if r.gateway_policy_from_image:
        assert policy_mount is None, f"policy.dir shadowed by {policy_mount}"
    else:
        assert policy_mount and policy_mount["readOnly"] is True, f"policy.dir not mounted read-only: {policy_mount}"
    # Nothing the scan does not read: no callers keys, TLS pair, session keys, signer key, or
    # the gateway's audit log (whose lock the gateway holds).
    for name in GATEWAY_ONLY_VOLUMES:
        assert name not in volumes and name not in mounts, f"gateway volume {name} in the scan job"
        if name in gw_volumes:
            assert all(volume_source(v) != volume_source(gw_volumes[name]) for v in volumes.values()), (
                f"the gateway's {name} volume is mounted in the scan job under another name"
            )
    for key, path in config_paths(cfg).items():
        if key not in ("policy.dir", "audit.file"):
            assert mount_covering(scan, path) is None, f"{key} = {path} is mounted in the scan job"
    secrets = {v["secret"]["secretName"] for v in volumes.values() if "secret" in v}
    assert secrets <= {v["secret"]["secretName"] for v in volumes.values() if v["name"] == "git-secret"}, secrets
    claims = {v["persistentVolumeClaim"]["claimName"] for v in volumes.values() if "persistentVolumeClaim" in v}
    audit_mount = mount_covering(scan, cfg["audit"]["file"])
    if revoke:
        # Its own claim, writable, holding the audit file its config names.
        assert cfg["audit"]["file"] == f"{SCAN_AUDIT_DIR}/audit.jsonl", cfg["audit"]
        assert cfg["audit"]["file"] != r.config["audit"]["file"], "the scan would write the gateway's audit path"
        assert audit_mount and audit_mount["name"] == "scan-audit" and not audit_mount.get("readOnly"), audit_mount
        assert audit_mount["mountPath"] == SCAN_AUDIT_DIR and "subPath" not in audit_mount, audit_mount
        assert claims == {volumes["scan-audit"]["persistentVolumeClaim"]["claimName"]}, claims
    else:
        assert audit_mount is None and not claims, "a report-only scan mounts an audit volume"
    # With networkPolicy.enabled the scan pods get the gateway's egress and no ingress.
    if r.all("NetworkPolicy"):
        np = r.one("NetworkPolicy", SCAN_NAME)["spec"]
        assert np["podSelector"]["matchLabels"].items() <= labels.items(), "scan NetworkPolicy misses the scan pods"
        assert np["policyTypes"] == ["Ingress", "Egress"] and "ingress" not in np, np
        gateway_egress = r.one("NetworkPolicy", RELEASE)["spec"]["egress"]
        assert np["egress"] == gateway_egress, "scan egress differs from the gateway's"
    else:
        assert SCAN_NAME not in r.names("NetworkPolicy")
    assert f"Drift scan: CronJob {SCAN_NAME}" in r.notes, r.notes


def expect_scan_report_only(r: Rendered) -> None:
    check_scan_job(r, revoke=False)
    cronjob = r.scan_cronjob["spec"]
    assert cronjob["schedule"] == "17 * * * *" and "timeZone" not in cronjob
    assert (cronjob["successfulJobsHistoryLimit"], cronjob["failedJobsHistoryLimit"]) == (3, 3)
    assert cronjob["startingDeadlineSeconds"] == 300
    job = cronjob["jobTemplate"]["spec"]
    # Exit 3 (violations) must show as a failed Job at once, so alerts fire.
    assert job["backoffLimit"] == 0 and job["activeDeadlineSeconds"] == 1800, job
    # Regions from config.upstream.allowed_regions; JSON for log pipelines; nothing revoked.
    assert r.scan["args"] == ["scan", "--config", "/etc/waguard/waguard.toml", "--format", "json"], r.scan["args"]
    # The gateway's own waguard.toml, from the gateway's ConfigMap.
    config_volume = next(v for v in r.scan_pod["volumes"] if v["name"] == "config")
    assert config_volume["configMap"] == {"name": RELEASE}, config_volume
    assert r.scan_toml_text == r.toml_text
    assert SCAN_NAME not in r.names("ConfigMap"), "report-only needs no config of its own"
    assert "initContainers" not in r.scan_pod
    assert {e["name"]: e.get("value") for e in r.scan["env"]} == {"AWS_REGION": "eu-west-1"}
    assert r.scan["resources"]["limits"]["memory"] == "256Mi"
    assert "report only" in r.notes, r.notes


def expect_scan_revoking(r: Rendered) -> str:
    check_scan_job(r, revoke=True)
    args = r.scan["args"]
    assert args == ["scan", "--config", "/etc/waguard/waguard.toml", "--region", "eu-west-1",
                    "--region", "us-east-1", "--format", "table", "--revoke",
                    "--max-revocations", "20"], args
    job = r.scan_cronjob["spec"]
    assert job["schedule"] == "*/30 * * * *" and job["timeZone"] == "Europe/Berlin", job
    assert "startingDeadlineSeconds" not in job
    assert job["jobTemplate"]["spec"]["activeDeadlineSeconds"] == 600
    claim = next(v for v in r.scan_pod["volumes"] if v["name"] == "scan-audit")["persistentVolumeClaim"]
    assert claim == {"claimName": "waguard-scan-audit"}, claim
    # Policy from git: one checkout before the scan, no sidecar.
    init = container(r.scan_pod, "git-sync-init", init=True)
    assert init == container(r.pod, "git-sync-init", init=True), "the scan's checkout differs from the gateway's"
    # Its config is the gateway's with [audit] moved into its claim: no signer key (it stays in
    # the gateway pod) and no stdout copy (stdout carries the report).
    config_volume = next(v for v in r.scan_pod["volumes"] if v["name"] == "config")
    assert config_volume["configMap"] == {"name": SCAN_NAME}, config_volume
    gateway, scan = r.config, r.scan_config
    assert "signing_key_file" in gateway["audit"] and "signing_key_file" not in scan["audit"], scan["audit"]
    assert scan["audit"]["stdout"] is False
    expected = {**gateway["audit"], "file": f"{SCAN_AUDIT_DIR}/audit.jsonl", "stdout": False}
    del expected["signing_key_file"]
    assert scan["audit"] == expected, scan["audit"]
    assert {k: v for k, v in scan.items() if k != "audit"} == {k: v for k, v in gateway.items() if k != "audit"}
    assert scan["scan"] == {"team_tag": "owner", "regions": ["eu-west-1"]}
    # The config the job reads passes check-config, checkpoints off.
    out = check_config_with_binary(r, r.scan_toml_text)
    assert "audit checkpoints off" in out, out
    assert "revoking violating shares" in r.notes, r.notes
    return f"scan's {out}"


CASES: list[tuple[str, dict[str, Any], Callable[[Rendered], str | None], set[str]]] = [
    ("default values", {}, expect_defaults, {"waguard-callers"}),
    (
        "IRSA annotation, callers Secret from values",
        {
            "serviceAccount": {"annotations": {"eks.amazonaws.com/role-arn": "arn:aws:iam::123456789012:role/waguard"}},
            "aws": {"region": "eu-west-1"},
            "callers": {"content": DEMO_CALLERS_TEXT, "rollOnChange": True},
        },
        expect_irsa_and_inline_callers,
        set(),
    ),
    (
        "existing callers Secret with its own key",
        {"callers": {"existingSecret": "team-callers", "key": "keys.toml"}},
        expect_existing_secret,
        {"team-callers"},
    ),
    (
        "TLS on, Secret from values",
        {"tls": {"enabled": True, "cert": FAKE_PEM_CERT, "key": FAKE_PEM_KEY}},
        expect_tls,
        {"waguard-callers"},
    ),
    (
        "TLS on, existing Secret, custom port",
        {"tls": {"enabled": True, "existingSecret": "waguard-cert-manager"}, "service": {"port": 8443}},
        expect_tls_existing_secret,
        {"waguard-callers", "waguard-cert-manager"},
    ),
    (
        "git-sync over SSH with NetworkPolicy",
        {
            "policies": {
                "source": "gitSync",
                "gitSync": {
                    "repo": "git@github.com:example/waguard-policies.git",
                    "ref": "release",
                    "path": "/policies/",
                    "auth": {"type": "ssh", "existingSecret": "policy-repo-ssh"},
                },
            },
            "networkPolicy": {"enabled": True},
        },
        expect_git_sync,
        {"waguard-callers", "policy-repo-ssh"},
    ),
    (
        "NetworkPolicy on",
        {
            "networkPolicy": {
                "enabled": True,
                "egress": {"httpsCidrs": ["10.0.0.0/16"]},
                "ingress": {"adminFrom": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}}]},
            }
        },
        expect_network_policy,
        {"waguard-callers"},
    ),
    (
        "ServiceMonitor on",
        {"serviceMonitor": {"enabled": True, "labels": {"release": "prometheus"}}},
        expect_service_monitor,
        {"waguard-callers"},
    ),
    (
        "HPA and PDB minAvailable",
        {
            "autoscaling": {"enabled": True, "minReplicas": 3, "maxReplicas": 12,
                            "targetCPUUtilizationPercentage": 60, "targetMemoryUtilizationPercentage": 80},
            "podDisruptionBudget": {"minAvailable": 2},
            "topologySpreadConstraints": [{"maxSkew": 1, "topologyKey": "topology.kubernetes.io/zone",
                                           "whenUnsatisfiable": "ScheduleAnyway"}],
        },
        expect_hpa_and_pdb,
        {"waguard-callers"},
    ),
    (
        "audit on a PersistentVolumeClaim, not on stdout",
        {"audit": {"volume": {"type": "persistentVolumeClaim", "persistentVolumeClaim": {"storageClassName": "efs-sc"}}},
         "config": {"audit": {"stdout": False, "max_file_bytes": 52428800, "max_files": 20}}},
        expect_audit_pvc,
        {"waguard-callers"},
    ),
    (
        "signed audit checkpoints, key from an existing Secret",
        {
            "audit": {"signing": {"existingSecret": "waguard-audit-signing", "logName": "waguard-prod"}},
            "config": {"audit": {"checkpoint_interval": 5, "stdout_buffer_bytes": 1048576}},
        },
        expect_signed_checkpoints,
        {"waguard-callers", "waguard-audit-signing"},
    ),
    (
        "signed audit checkpoints on a PVC, own Secret key, log_name from config",
        {
            "audit": {"signing": {"existingSecret": "audit-keys", "key": "signer.key", "logName": "overridden"},
                      "volume": {"type": "persistentVolumeClaim"}},
            "config": {"audit": {"log_name": "audit.example.internal"}},
        },
        expect_signed_checkpoints_custom_key,
        {"waguard-callers", "audit-keys"},
    ),
    (
        "sign-in with an AWS identity, rotated session keys, git-sync sidecar",
        {
            "identity": {"keys": {"existingSecret": "waguard-identity-keys",
                                  "items": ["key-2026-11", "key-2026-05"]}},
            "config": {"identity": {"enabled": True, "server_id": "waguard.example.internal",
                                    "session_duration": 7200,
                                    "sts_endpoint": "https://sts.eu-west-1.amazonaws.com"}},
            "policies": {"source": "gitSync",
                         "gitSync": {"repo": "https://github.com/example/waguard-policies.git"}},
        },
        expect_identity,
        {"waguard-callers", "waguard-identity-keys"},
    ),
    ("policy baked into the image", {"policies": {"source": "image"}}, expect_image_policy, {"waguard-callers"}),
    (
        "drift scan CronJob reports only, with the gateway's role and policy but none of its secrets",
        {
            "scan": {"cronJob": {"enabled": True}},
            "config": {"upstream": {"allowed_regions": ["us-east-1", "eu-west-1"]},
                       "identity": {"enabled": True, "server_id": "waguard.example.internal"}},
            "aws": {"region": "eu-west-1"},
            "tls": {"enabled": True, "existingSecret": "waguard-cert-manager"},
            "identity": {"keys": {"existingSecret": "waguard-identity-keys"}},
            "audit": {"volume": {"type": "persistentVolumeClaim"}},
        },
        expect_scan_report_only,
        {"waguard-callers", "waguard-cert-manager", "waguard-identity-keys"},
    ),
    (
        "drift scan CronJob revokes into its own audit claim, policy from git-sync, NetworkPolicy",
        {
            "scan": {"cronJob": {"enabled": True, "revoke": True, "auditClaim": "waguard-scan-audit",
                                 "regions": ["eu-west-1", "us-east-1"], "format": "table",
                                 "schedule": "*/30 * * * *", "timeZone": "Europe/Berlin",
                                 "startingDeadlineSeconds": None, "activeDeadlineSeconds": 600}},
            "config": {"scan": {"team_tag": "owner", "regions": ["eu-west-1"]},
                       "audit": {"checkpoint_interval": 5}},
            "audit": {"signing": {"existingSecret": "waguard-audit-signing"},
                      "volume": {"type": "persistentVolumeClaim"}},
            "policies": {
                "source": "gitSync",
                "gitSync": {"repo": "git@github.com:example/waguard-policies.git",
                            "auth": {"type": "ssh", "existingSecret": "policy-repo-ssh"}},
            },
            "networkPolicy": {"enabled": True},
        },
        expect_scan_revoking,
        {"waguard-callers", "waguard-audit-signing", "policy-repo-ssh"},
    ),
    (
        "config keys pass through to waguard.toml",
        {
            "config": {
                "server": {"max_body_bytes": 2097152, "shutdown_grace": 12.5, "max_in_flight": 64},
                "limits": {"per_caller_rate": 10, "per_team_rate": 2.5, "per_team_burst": 20,
                           "operations": {"CreateTemplateShare": {"per_caller_rate": 0.2,
                                                                  "per_caller_burst": 5}}},
                "upstream": {"allowed_regions": ["us-east-1", "eu-west-1"],
                             "endpoint": "https://wellarchitected.us-east-1.amazonaws.com"},
                "organizations": {"enabled": True, "refresh_interval": 600,
                                  "role_arn": "arn:aws:iam::111111111111:role/waguard-org-read"},
            },
            "lifecycle": {"preStopSleepSeconds": 2},
            "listenAddress": "[::]",
        },
        expect_config_passthrough,
        {"waguard-callers"},
    ),
    (
        "policy files from values, rolling on change",
        {
            "policies": {
                "files": {
                    "waguard/authz.rego": (REPO_POLICIES / "waguard" / "authz.rego").read_text(),
                    "waguard/teams.json": '{"payments": {"accounts": ["111122223333"]}}\n',
                },
                "rollOnChange": True,
            }
        },
        expect_inline_policy,
        {"waguard-callers"},
    ),
]

# Values the chart must refuse, with the words the refusal must contain.
REJECTED: list[tuple[str, dict[str, Any], str]] = [
    ("wrong type (schema)", {"replicaCount": "two"}, "/replicaCount"),
    ("unknown top-level value (schema)", {"replicas": 3}, "replicas"),
    ("unknown policy source (schema)", {"policies": {"source": "s3"}}, "/policies/source"),
    ("chart-owned config key", {"config": {"server": {"listen": "0.0.0.0:1"}}}, "config.server.listen is set by the chart"),
    ("TLS without a certificate", {"tls": {"enabled": True}}, "tls.existingSecret"),
    ("grace period shorter than the drain", {"terminationGracePeriodSeconds": 20}, "terminationGracePeriodSeconds (20)"),
    ("git-sync without a repository", {"policies": {"source": "gitSync"}}, "policies.gitSync.repo"),
    ("git-sync auth without a Secret",
     {"policies": {"source": "gitSync", "gitSync": {"repo": "https://x/y.git", "auth": {"type": "password"}}}},
     "policies.gitSync.auth.existingSecret"),
    ("no callers file", {"callers": {"existingSecret": ""}}, "callers.existingSecret"),
    ("signer key path in config", {"config": {"audit": {"signing_key_file": "/keys/audit.key"}}},
     "audit.signing.existingSecret"),
    ("log name with a space (schema)", {"audit": {"signing": {"logName": "waguard prod"}}}, "/audit/signing/logName"),
    ("log name with '+' (schema)", {"config": {"audit": {"log_name": "a+b"}}}, "/config/audit/log_name"),
    ("signer key name with a folder (schema)", {"audit": {"signing": {"key": "keys/audit.key"}}}, "/audit/signing/key"),
    ("checkpoint interval under a second (schema)", {"config": {"audit": {"checkpoint_interval": 0.5}}},
     "/config/audit/checkpoint_interval"),
    ("rate limit of zero (schema)", {"config": {"limits": {"per_caller_rate": 0}}},
     "/config/limits/per_caller_rate"),
    ("unknown limits key (schema)", {"config": {"limits": {"per_caller": 1}}}, "per_caller"),
    ("header limit HTTP/1 cannot enforce (schema)", {"config": {"server": {"max_header_bytes": 4096}}},
     "/config/server/max_header_bytes"),
    ("stdout buffer under 64 KiB (schema)", {"config": {"audit": {"stdout_buffer_bytes": 4096}}},
     "/config/audit/stdout_buffer_bytes"),
    ("session key paths in config",
     {"identity": {"keys": {"existingSecret": "waguard-identity-keys"}},
      "config": {"identity": {"enabled": True, "server_id": "gw", "key_files": ["/keys/key-1"]}}},
     "identity.keys.existingSecret"),
    ("identity enabled without the session keys",
     {"config": {"identity": {"enabled": True, "server_id": "waguard.example.internal"}}},
     "identity.keys.existingSecret"),
    ("identity enabled without a server id",
     {"identity": {"keys": {"existingSecret": "waguard-identity-keys"}}, "config": {"identity": {"enabled": True}}},
     "config.identity.server_id"),
    ("session duration over 12 hours (schema)",
     {"config": {"identity": {"session_duration": 43201}}}, "/config/identity/session_duration"),
    ("session duration under a minute (schema)",
     {"config": {"identity": {"session_duration": 59}}}, "/config/identity/session_duration"),
    ("STS endpoint with a path (schema)",
     {"config": {"identity": {"sts_endpoint": "https://sts.amazonaws.com/x"}}}, "/config/identity/sts_endpoint"),
    ("no session keys listed (schema)",
     {"identity": {"keys": {"existingSecret": "waguard-identity-keys", "items": []}}}, "/identity/keys/items"),
    ("drift scan revoking without an audit claim of its own",
     {"scan": {"cronJob": {"enabled": True, "revoke": True}},
      "config": {"upstream": {"allowed_regions": ["us-east-1"]}}},
     "scan.cronJob.revoke needs scan.cronJob.auditClaim"),
    ("drift scan revoking into the gateway's audit claim",
     {"scan": {"cronJob": {"enabled": True, "revoke": True, "auditClaim": "waguard-audit", "regions": ["us-east-1"]}},
      "audit": {"volume": {"type": "persistentVolumeClaim"}}},
     "is the gateway's audit claim"),
    ("drift scan with no region to scan", {"scan": {"cronJob": {"enabled": True}}}, "no regions to scan"),
    ("drift scan report format other than table or json (schema)",
     {"scan": {"cronJob": {"enabled": True, "format": "yaml", "regions": ["us-east-1"]}}}, "/scan/cronJob/format"),
    ("drift scan region that is not a region name (schema)",
     {"scan": {"cronJob": {"regions": ["us east"]}}}, "/scan/cronJob/regions/0"),
    ("unknown [scan] key in config (schema)", {"config": {"scan": {"intervall": 60}}}, "intervall"),
]


def run_case(values: dict[str, Any], expect: Callable[[Rendered], str | None], external: set[str]) -> str:
    r = render(values)
    check_schemas(r)
    check_hardening(r)
    check_probes_and_shutdown(r)
    check_references(r, values, external)
    extra = expect(r)
    detail = f"{len(r.objects)} objects valid for Kubernetes {'/'.join(KUBE_VERSIONS)}; {check_config_with_binary(r)}"
    return f"{detail}; {extra}" if extra else detail


def run_rejected(values: dict[str, Any], words: str) -> str:
    try:
        render(values)
    except helm.HelmError as e:
        message = str(e)
        assert words in message, f"refused, but the message does not say {words!r}: {message}"
        return message.strip().splitlines()[-1].strip()
    raise AssertionError("rendered without error")


def run_lint() -> str:
    for values in (None, {"tls": {"enabled": True, "existingSecret": "x"}, "networkPolicy": {"enabled": True},
                          "serviceMonitor": {"enabled": True}, "autoscaling": {"enabled": True},
                          "scan": {"cronJob": {"enabled": True, "revoke": True, "auditClaim": "scan-audit",
                                               "regions": ["us-east-1"]}}}):
        report = helm.lint(CHART, values, strict=True, kube_version="v1.30.0")
        problems = [m for m in report["messages"] if m["severity"] >= 2] + [{"error": e} for e in report["errors"]]
        assert not problems, f"helm lint: {problems}"
    return "helm lint --strict clean"


def run_validator_self_test() -> str:
    # A strict validator must reject a misspelled field, or every "valid" above means nothing.
    bad = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "x"}, "spec": {"prots": []}}
    try:
        kubernetes_validate.validate(bad, KUBE_VERSIONS[0], strict=True)
    except kubernetes_validate.ValidationError:
        return "kubernetes-validate rejects unknown fields"
    raise AssertionError("kubernetes-validate accepted a misspelled field")


def run_default_policy_check() -> str:
    # The default policy ConfigMap, laid out by its volume, is the repository's policies/ minus tests.
    r = render({})
    vol = next(v for v in r.pod["volumes"] if v["name"] == "policies")["configMap"]
    cm = r.one("ConfigMap", vol["name"])
    mounted = {i["path"]: cm["data"][i["key"]] for i in vol["items"]}
    assert len(vol["items"]) == len(cm["data"]), "ConfigMap keys without a volume item"
    repo = {
        f.relative_to(REPO_POLICIES).as_posix(): f.read_text()
        for f in REPO_POLICIES.rglob("*")
        if f.is_file() and not f.name.endswith("_test.rego")
    }
    assert mounted == repo, f"policy ConfigMap differs from policies/: {sorted(set(mounted) ^ set(repo))}"
    return f"ConfigMap mounts the repository's policies/ ({len(repo)} files)"


def run_toml_rendering_check() -> str:
    # Keys the chart has never heard of reach waguard.toml typed, nested maps as inline tables.
    r = render({
        "config": {
            "policy": {"mode": "dry-run", "operation_modes": {"CreateLensShare": "dry-run"}},
            "audit": {"max_file_bytes": 104857600, "ratio": 0.25, "tags": ["a", 'q"uote'], "skipped": None},
            "future_table": {"enabled": True, "limits": {"Odd Key": 3, "plain": "v"}},
        },
        "extraConfig": "[another]\nkey = 1",
    })
    cfg = r.config
    assert cfg["policy"]["mode"] == "dry-run"
    assert cfg["policy"]["operation_modes"] == {"CreateLensShare": "dry-run"}
    assert cfg["audit"]["max_file_bytes"] == 104857600 and isinstance(cfg["audit"]["max_file_bytes"], int)
    assert cfg["audit"]["ratio"] == 0.25 and cfg["audit"]["tags"] == ["a", 'q"uote']
    assert "skipped" not in cfg["audit"], "null values must be left out"
    assert cfg["future_table"] == {"enabled": True, "limits": {"Odd Key": 3, "plain": "v"}}
    assert cfg["another"] == {"key": 1}
    assert cfg["policy"]["dir"] == "/etc/waguard/policies"
    return "values.config renders to typed TOML (ints, floats, strings, lists, inline tables)"


def main() -> int:
    checks: list[tuple[str, Callable[[], str]]] = [
        ("validator self-test", run_validator_self_test),
        ("lint", run_lint),
        ("default policy", run_default_policy_check),
        ("config rendering", run_toml_rendering_check),
    ]
    checks += [(f"render: {n}", (lambda v=v, e=e, x=x: run_case(v, e, x))) for n, v, e, x in CASES]
    checks += [(f"refuse: {n}", (lambda v=v, w=w: run_rejected(v, w))) for n, v, w in REJECTED]
    passed = failed = 0
    print(f"helm {helm.helm_sdk_version()}, kubernetes-validate {kubernetes_validate.__version__}, chart {CHART}")
    for name, check in checks:
        try:
            detail = check()
        except Exception as e:  # noqa: BLE001 - every failure is reported, then the next case runs
            failed += 1
            kind = "" if isinstance(e, AssertionError) else f"{type(e).__name__}: "
            print(f"FAIL {name}: {kind}{e}")
            if not isinstance(e, (AssertionError, helm.HelmError)):
                traceback.print_exc(file=sys.stdout)
        else:
            passed += 1
            print(f"ok   {name}: {detail}")
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
