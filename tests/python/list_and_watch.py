"""The Python kubernetes client lists namespaces and watches ConfigMaps on minke.

Run with KUBECONFIG pointing at a running cluster; exits non-zero on any mismatch.
"""
import sys
import threading

from kubernetes import client, config, watch


def main() -> int:
    config.load_kube_config()
    core = client.CoreV1Api()
    names = sorted(ns.metadata.name for ns in core.list_namespace().items)
    assert names == ["default", "kube-node-lease", "kube-public", "kube-system"], names

    start = core.list_namespaced_config_map("default").metadata.resource_version
    seen = []

    def create_later():
        body = client.V1ConfigMap(metadata=client.V1ObjectMeta(name="from-python"), data={"k": "v"})
        core.create_namespaced_config_map("default", body)
        core.patch_namespaced_config_map("from-python", "default", {"data": {"k": "w"}})
        core.delete_namespaced_config_map("from-python", "default")

    w = watch.Watch()
    creator = threading.Timer(0.2, create_later)
    creator.start()
    for event in w.stream(core.list_namespaced_config_map, "default", resource_version=start, timeout_seconds=20):
        seen.append((event["type"], event["object"].metadata.name, (event["object"].data or {}).get("k")))
        if event["type"] == "DELETED":
            w.stop()
    creator.join()
    assert seen == [("ADDED", "from-python", "v"), ("MODIFIED", "from-python", "w"), ("DELETED", "from-python", "w")], seen
    print("python client: ok", seen)
    return 0


if __name__ == "__main__":
    sys.exit(main())
