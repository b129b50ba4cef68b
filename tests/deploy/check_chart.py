"""Renders deploy/helm/athens with Helm's own engine (helm-python-sdk binds
Helm v4's Go SDK), lints it, and validates every rendered object against
the Kubernetes OpenAPI schemas (kubernetes-validate, strict: unknown fields
fail). Run by tests/deploy.rs:

    python check_chart.py CHART_DIR HELP_TEXT_FILE

HELP_TEXT_FILE is `athens --help`; every variable the chart sets for the
proxy must be one it reads. Exits non-zero with a message on the first
problem.
"""

import re
import sys

import helm_python as helm
import kubernetes_validate
import yaml

KUBERNETES_VERSION = "1.30.0"
# Set by the chart for the process, not configuration keys of athens.
NOT_CONFIG = {"HOME"}

SSH_KEY = "-----BEGIN OPENSSH PRIVATE KEY-----\nnot-a-key\n-----END OPENSSH PRIVATE KEY-----\n"

# name: (values, what must hold of the objects)
SCENARIOS = {
    "defaults": {},
    "disk-persistence": {
        "storage": {"disk": {"persistence": {"enabled": True, "size": "20Gi", "storageClass": "fast"}}},
        "ingress": {
            "enabled": True,
            "className": "nginx",
            "hosts": [{"host": "athens.example.com"}],
            "tls": [{"secretName": "athens-tls", "hosts": ["athens.example.com"]}],
        },
        "resources": {"limits": {"memory": "512Mi"}, "requests": {"cpu": "100m", "memory": "128Mi"}},
        "service": {"type": "NodePort"},
    },
    "s3-replicas-redis": {
        "replicaCount": 3,
        "storage": {"type": "s3", "s3": {"region": "eu-west-1", "bucket": "mods", "accessKey": "AK", "secretKey": "SK"}},
        "singleFlight": {"type": "redis", "redis": {"endpoint": "redis:6379", "password": "pw"}},
        "upstreamProxy": {"enabled": True, "url": "https://proxy.golang.org"},
        "goBinaryEnvVars": ["GOPRIVATE=corp.example.com"],
        "basicAuth": {"enabled": True},
    },
    "minio-existing-secret": {
        "storage": {"type": "minio", "minio": {"endpoint": "minio:9000", "bucket": "mods", "existingSecret": "minio-creds"}},
    },
    "gcp": {"storage": {"type": "gcp", "gcp": {"projectID": "p", "bucket": "b", "serviceAccount": "e30="}}},
    "azureblob": {"storage": {"type": "azureblob", "azureblob": {"accountName": "a", "containerName": "c", "accountKey": "k"}}},
    "private-repositories": {
        "netrc": {"enabled": True},
        "gitconfig": {"enabled": True},
        "sshGitServers": [{"host": "git.example.com", "user": "git", "port": 2222, "privateKey": SSH_KEY}],
        "sshKnownHosts": "git.example.com ssh-ed25519 AAAA",
        "configToml": {"enabled": True, "data": 'LogFormat = "json"'},
        "configEnvVars": [{"name": "ATHENS_DOWNLOAD_MODE", "value": "redirect"}],
    },
}

# Values that must not render, and a word the error must contain.
REFUSED = {
    "unknown storage": ({"storage": {"type": "mongo"}}, "storage.type"),
    "s3 without bucket": ({"storage": {"type": "s3", "s3": {"region": "r", "accessKey": "a", "secretKey": "s"}}}, "bucket"),
    "minio without keys": ({"storage": {"type": "minio", "minio": {"endpoint": "m:9000", "bucket": "b"}}}, "accessKey"),
}


def fail(message):
    sys.exit(f"check_chart.py: {message}")


def objects_of(rendered):
    objects = []
    for path, text in sorted(rendered.items()):
        if path.endswith("NOTES.txt"):
            continue
        for doc in yaml.safe_load_all(text):
            if doc is not None:
                objects.append((path, doc))
    return objects


def by_kind(objects, kind):
    return [doc for _, doc in objects if doc["kind"] == kind]


def env_of(container):
    return {e["name"]: e for e in container.get("env", [])}


def check_common(name, objects, config_vars):
    deployments = by_kind(objects, "Deployment")
    if len(deployments) != 1:
        fail(f"{name}: {len(deployments)} Deployments")
    pod = deployments[0]["spec"]["template"]["spec"]
    container = pod["containers"][0]
    if container["livenessProbe"]["httpGet"]["path"] != "/healthz":
        fail(f"{name}: liveness probe is not /healthz")
    if container["readinessProbe"]["httpGet"]["path"] != "/readyz":
        fail(f"{name}: readiness probe is not /readyz")
    security = container["securityContext"]
    if not security.get("readOnlyRootFilesystem") or security.get("allowPrivilegeEscalation") is not False:
        fail(f"{name}: container securityContext {security}")
    if not pod["securityContext"].get("runAsNonRoot") or pod["securityContext"].get("runAsUser") != 1000:
        fail(f"{name}: pod securityContext {pod['securityContext']}")
    mounts = {m["mountPath"] for m in container["volumeMounts"]}
    for needed in ("/var/lib/athens", "/tmp", "/home/athens"):
        if needed not in mounts:
            fail(f"{name}: nothing writable mounted at {needed} (read-only root)")
    if container["ports"][0]["containerPort"] != 3000:
        fail(f"{name}: container port {container['ports']}")
    for var in env_of(container):
        if var not in config_vars and var not in NOT_CONFIG:
            fail(f"{name}: the chart sets {var}, which athens does not read")
    # Every Secret and ConfigMap a pod refers to is rendered or given.
    return deployments[0], container


def secret_keys(objects):
    keys = {}
    for secret in by_kind(objects, "Secret"):
        keys[secret["metadata"]["name"]] = set(secret.get("stringData", {})) | set(secret.get("data", {}))
    return keys


def check_secret_refs(name, objects, container, external):
    keys = secret_keys(objects)
    for var, entry in env_of(container).items():
        ref = entry.get("valueFrom", {}).get("secretKeyRef")
        if not ref or ref["name"] in external or ref.get("optional"):
            continue
        if ref["key"] not in keys.get(ref["name"], set()):
            fail(f"{name}: {var} refers to {ref['name']}/{ref['key']}, which is not rendered")


def check_scenario(name, objects, container):
    env = env_of(container)
    kinds = sorted(doc["kind"] for _, doc in objects)
    if name == "defaults":
        if kinds != ["Deployment", "Service", "ServiceAccount"]:
            fail(f"defaults render {kinds}")
        if env["ATHENS_STORAGE_TYPE"]["value"] != "disk":
            fail("defaults: storage is not disk")
        if env["ATHENS_GO_BINARY_ENV_VARS"]["value"] != "GOPROXY=direct":
            fail(f"defaults: {env['ATHENS_GO_BINARY_ENV_VARS']}")
    elif name == "disk-persistence":
        pvc = by_kind(objects, "PersistentVolumeClaim")
        if len(pvc) != 1 or pvc[0]["spec"]["resources"]["requests"]["storage"] != "20Gi":
            fail(f"disk-persistence: {pvc}")
        if len(by_kind(objects, "Ingress")) != 1:
            fail("disk-persistence: no Ingress")
        if by_kind(objects, "Deployment")[0]["spec"].get("strategy", {}).get("type") != "Recreate":
            fail("disk-persistence: a ReadWriteOnce volume needs the Recreate strategy")
    elif name == "s3-replicas-redis":
        if by_kind(objects, "Deployment")[0]["spec"]["replicas"] != 3:
            fail("s3-replicas-redis: replicas")
        want = "GOPROXY=https://proxy.golang.org; GOPRIVATE=corp.example.com"
        if env["ATHENS_GO_BINARY_ENV_VARS"]["value"] != want:
            fail(f"s3-replicas-redis: {env['ATHENS_GO_BINARY_ENV_VARS']}")
        if env["ATHENS_SINGLE_FLIGHT_TYPE"]["value"] != "redis":
            fail("s3-replicas-redis: single flight")
        for var in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "ATHENS_REDIS_PASSWORD", "BASIC_AUTH_PASS"):
            if "valueFrom" not in env.get(var, {}):
                fail(f"s3-replicas-redis: {var} does not come from a Secret")
    elif name == "minio-existing-secret":
        if by_kind(objects, "Secret"):
            fail("minio-existing-secret: the chart wrote a Secret although one was given")
    elif name == "private-repositories":
        if env["ATHENS_NETRC_PATH"]["value"] != "/home/athens/.netrc":
            fail("private-repositories: netrc path")
        mounts = {m["mountPath"] for m in container["volumeMounts"]}
        for needed in ("/home/athens/.netrc", "/home/athens/.gitconfig", "/home/athens/.ssh"):
            if needed not in mounts:
                fail(f"private-repositories: {needed} not mounted")
        config = by_kind(objects, "ConfigMap")[0]["data"]
        if "Host git.example.com" not in config["ssh_config"] or "Port 2222" not in config["ssh_config"]:
            fail(f"private-repositories: ssh config {config['ssh_config']!r}")
        if container.get("args") != ["-config_file=/etc/athens/chart/config.toml"]:
            fail(f"private-repositories: args {container.get('args')}")


def main():
    chart_dir, help_file = sys.argv[1:]
    help_text = open(help_file).read()
    config_vars = set()
    for line in help_text.splitlines():
        line = line.strip()
        if line.startswith("env: "):
            config_vars.update(v.strip() for v in line[len("env: "):].split(" or "))
    if "ATHENS_STORAGE_TYPE" not in config_vars:
        fail(f"{help_file} lists no configuration variables")

    report = helm.lint(chart_dir, strict=True)
    problems = [m for m in report.get("messages") or [] if m.get("severity", 0) >= 2]
    if report.get("errors") or problems:
        fail(f"helm lint: {report}")

    with helm.Chart.load(chart_dir) as chart:
        for name, values in SCENARIOS.items():
            rendered = chart.render(values, name="athens", namespace="proxy", is_install=True)
            objects = objects_of(rendered)
            for path, doc in objects:
                try:
                    kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)
                except kubernetes_validate.ValidationError as e:
                    # The first lines name the rule; the rest is the schema.
                    reason = "\n".join(str(e).splitlines()[:3])
                    fail(f"{name}: {path}: {doc['kind']} is not a valid Kubernetes object: {reason}")
                labels = doc["metadata"].get("labels", {})
                if labels.get("app.kubernetes.io/instance") != "athens":
                    fail(f"{name}: {path} lacks the release labels")
            _, container = check_common(name, objects, config_vars)
            external = {"minio-creds", "netrcsecret", "athens-proxy-gitconfig"}
            check_secret_refs(name, objects, container, external)
            check_scenario(name, objects, container)
            print(f"{name}: {len(objects)} objects valid")
        for name, (values, word) in REFUSED.items():
            try:
                chart.render(values, name="athens", namespace="proxy")
            except helm.HelmError as e:
                if word not in str(e):
                    fail(f"{name}: refused, but the message does not name {word}: {e}")
                print(f"{name}: refused")
            else:
                fail(f"{name}: rendered although it should be refused")


if __name__ == "__main__":
    main()
