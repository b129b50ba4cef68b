#!/usr/bin/env python3
"""Writes the athens image as an OCI image layout (image-spec v1.0).

    oci_layout.py OUT_DIR BINARY CONFIG_TOML CA_BUNDLE

One gzip'd layer, FROM scratch: the static binary as /bin/athens (the
entrypoint), the default configuration, the CA certificates, /etc/passwd
and /etc/group with the user athens (uid 1000), a writable /var/lib/athens
owned by it and /tmp. Every timestamp is zero and entries are written in a
fixed order, so the same inputs give the same digests.
"""

import gzip
import hashlib
import io
import json
import os
import sys
import tarfile

UID = 1000
GID = 1000
DATA_DIR = "var/lib/athens"
PORT = "3000/tcp"

PASSWD = (
    "root:x:0:0:root:/root:/sbin/nologin\n"
    f"athens:x:{UID}:{GID}:athens:/{DATA_DIR}:/sbin/nologin\n"
)
GROUP = f"root:x:0:\nathens:x:{GID}:\n"


def entry(name, kind, mode, uid=0, gid=0, size=0):
    info = tarfile.TarInfo(name)
    info.type = kind
    info.mode = mode
    info.uid, info.gid = uid, gid
    info.uname = info.gname = ""
    info.mtime = 0
    info.size = size
    return info


def layer_tar(binary, config_toml, ca_bundle):
    """The uncompressed layer."""
    files = {
        "bin/athens": (open(binary, "rb").read(), 0o755),
        "etc/athens/config.toml": (open(config_toml, "rb").read(), 0o644),
        "etc/group": (GROUP.encode(), 0o644),
        "etc/passwd": (PASSWD.encode(), 0o644),
        "etc/ssl/certs/ca-certificates.crt": (open(ca_bundle, "rb").read(), 0o644),
    }
    dirs = {
        "bin": (0o755, 0),
        "etc": (0o755, 0),
        "etc/athens": (0o755, 0),
        "etc/ssl": (0o755, 0),
        "etc/ssl/certs": (0o755, 0),
        "tmp": (0o1777, 0),
        "var": (0o755, 0),
        "var/lib": (0o755, 0),
        DATA_DIR: (0o755, UID),
    }
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name in sorted(set(dirs) | set(files)):
            if name in dirs:
                mode, owner = dirs[name]
                tar.addfile(entry(name, tarfile.DIRTYPE, mode, owner, owner))
            else:
                data, mode = files[name]
                info = entry(name, tarfile.REGTYPE, mode, size=len(data))
                tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


def gzipped(data):
    out = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=out, compresslevel=9, mtime=0) as gz:
        gz.write(data)
    return out.getvalue()


def canonical_json(value):
    return json.dumps(value, sort_keys=True, separators=(",", ":")).encode()


def write_blob(out_dir, data):
    digest = hashlib.sha256(data).hexdigest()
    with open(os.path.join(out_dir, "blobs", "sha256", digest), "wb") as f:
        f.write(data)
    return {"digest": f"sha256:{digest}", "size": len(data)}


def main():
    if len(sys.argv) != 5:
        sys.exit(__doc__)
    out_dir, binary, config_toml, ca_bundle = sys.argv[1:]
    os.makedirs(os.path.join(out_dir, "blobs", "sha256"))

    layer = layer_tar(binary, config_toml, ca_bundle)
    layer_desc = write_blob(out_dir, gzipped(layer))
    layer_desc["mediaType"] = "application/vnd.oci.image.layer.v1.tar+gzip"

    image_config = {
        "architecture": "amd64",
        "os": "linux",
        "config": {
            "User": f"{UID}:{GID}",
            "ExposedPorts": {PORT: {}},
            "Env": [
                "PATH=/bin",
                f"HOME=/{DATA_DIR}",
                "SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt",
            ],
            "Entrypoint": ["/bin/athens"],
            "Cmd": ["-config_file=/etc/athens/config.toml"],
            "WorkingDir": f"/{DATA_DIR}",
            "Labels": {
                "org.opencontainers.image.title": "athens",
                "org.opencontainers.image.description": "A pure-Rust Go module proxy",
            },
        },
        "rootfs": {
            "type": "layers",
            "diff_ids": [f"sha256:{hashlib.sha256(layer).hexdigest()}"],
        },
    }
    config_desc = write_blob(out_dir, canonical_json(image_config))
    config_desc["mediaType"] = "application/vnd.oci.image.config.v1+json"

    manifest = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": config_desc,
        "layers": [layer_desc],
    }
    manifest_desc = write_blob(out_dir, canonical_json(manifest))
    manifest_desc["mediaType"] = "application/vnd.oci.image.manifest.v1+json"
    manifest_desc["platform"] = {"architecture": "amd64", "os": "linux"}
    manifest_desc["annotations"] = {"org.opencontainers.image.ref.name": "latest"}

    index = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [manifest_desc],
    }
    with open(os.path.join(out_dir, "index.json"), "wb") as f:
        f.write(canonical_json(index))
    with open(os.path.join(out_dir, "oci-layout"), "wb") as f:
        f.write(canonical_json({"imageLayoutVersion": "1.0.0"}))
    total = layer_desc["size"] + config_desc["size"] + manifest_desc["size"]
    print(f"{out_dir}: layer {layer_desc['digest']}, {total} bytes compressed")


if __name__ == "__main__":
    main()
