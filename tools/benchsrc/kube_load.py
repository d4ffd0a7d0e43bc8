#!/usr/bin/env python3
"""Bulk objects for `tools/bench kube`, written through a real kube-apiserver.

    kube_load.py load  --kube-dir DIR [--pods N --services N --policies N --namespaces N]
    kube_load.py churn --kube-dir DIR --rate PER_S --seconds S

`load` creates namespaces bench-0.., their ServiceAccounts, pods scheduled on
nodes that run no agent (bench-node-K: remote workloads for every agent) with
the status kubelet would write, Services with one EndpointSlice each (as the
EndpointSlice controller would) and AuthorizationPolicies. `churn` makes RATE
pod changes a second (create, status, relabel, delete, in turn) on its own
pods. Runs inside the control plane's network namespace (tools/kube up), as
the admin of DIR. Many keep-alive connections in threads: the API server,
not this client, is the limit.
"""
import argparse
import http.client
import json
import queue
import ssl
import sys
import threading
import time

THREADS = 16


class Api:
    def __init__(self, kube_dir):
        env = dict(line.strip().split("=", 1) for line in open(f"{kube_dir}/env") if "=" in line)
        host_port = env["SERVER"].removeprefix("https://")
        self.host, self.port = host_port.rsplit(":", 1)
        self.token = open(f"{kube_dir}/admin.token").read().strip()
        self.ctx = ssl.create_default_context(cafile=f"{kube_dir}/ca.crt")
        self.local = threading.local()

    def call(self, method, path, body=None, ctype="application/json"):
        for attempt in range(5):
            conn = getattr(self.local, "conn", None)
            if conn is None:
                conn = http.client.HTTPSConnection(self.host, int(self.port), context=self.ctx, timeout=60)
                self.local.conn = conn
            try:
                data = json.dumps(body).encode() if body is not None else None
                conn.request(method, path, body=data,
                             headers={"Authorization": f"Bearer {self.token}", "Content-Type": ctype})
                resp = conn.getresponse()
                text = resp.read()
            except (OSError, http.client.HTTPException):
                conn.close()
                self.local.conn = None
                time.sleep(0.2 * (attempt + 1))
                continue
            if resp.status == 429 or resp.status >= 500:
                time.sleep(0.2 * (attempt + 1))
                continue
            if resp.status >= 400 and not (resp.status == 409 and method == "POST"):
                raise RuntimeError(f"{method} {path}: {resp.status} {text[:300]!r}")
            return resp.status
        raise RuntimeError(f"{method} {path}: no answer after retries")


def run_all(api, requests):
    """Runs (method, path, body, ctype) tuples on THREADS connections."""
    q = queue.Queue()
    for r in requests:
        q.put(r)
    errors = []

    def worker():
        while not errors:
            try:
                r = q.get_nowait()
            except queue.Empty:
                return
            try:
                api.call(*r)
            except RuntimeError as e:
                errors.append(str(e))

    threads = [threading.Thread(target=worker) for _ in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        sys.exit(f"kube_load: {errors[0]}")


def pod_ip(i):
    return f"172.20.{i // 250}.{i % 250 + 1}"


def pod(ns, name, i, svc, sa):
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": ns,
                         "labels": {"app": svc, "version": "v1", "pod-template-hash": "6d8f9c7b5"}},
            "spec": {"nodeName": f"bench-node-{i % 100}", "serviceAccountName": sa,
                     "containers": [{"name": "app", "image": "ztunnel-bench/app",
                                     "ports": [{"name": "http", "containerPort": 8080}]}]}}


def status(ip):
    return {"status": {"phase": "Running", "podIP": ip, "podIPs": [{"ip": ip}],
                       "conditions": [{"type": "Ready", "status": "True"}]}}


MERGE = "application/merge-patch+json"


def load(api, a):
    nss = [f"bench-{n}" for n in range(a.namespaces)]
    run_all(api, [("POST", "/api/v1/namespaces",
                   {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}, "application/json")
                  for ns in nss])
    run_all(api, [("POST", f"/api/v1/namespaces/{ns}/serviceaccounts",
                   {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": f"sa-{k}"}},
                   "application/json") for ns in nss for k in range(7)])
    svc_of = {}
    pods = []
    for i in range(a.pods):
        s = i % a.services
        ns = nss[s % a.namespaces]
        name = f"pod-{i}"
        svc_of.setdefault(s, []).append(i)
        pods.append((ns, name, i))
    run_all(api, [("POST", f"/api/v1/namespaces/{ns}/pods",
                   pod(ns, name, i, f"svc-{i % a.services}", f"sa-{i % 7}"), "application/json")
                  for ns, name, i in pods])
    run_all(api, [("PATCH", f"/api/v1/namespaces/{ns}/pods/{name}/status", status(pod_ip(i)), MERGE)
                  for ns, name, i in pods])
    svcs = []
    slices = []
    for s in range(a.services):
        ns = nss[s % a.namespaces]
        vip = f"10.96.{200 + s // 250}.{s % 250 + 1}"
        svcs.append(("POST", f"/api/v1/namespaces/{ns}/services",
                     {"apiVersion": "v1", "kind": "Service", "metadata": {"name": f"svc-{s}"},
                      "spec": {"clusterIP": vip, "clusterIPs": [vip], "selector": {"app": f"svc-{s}"},
                               "ports": [{"name": "http", "port": 80, "targetPort": "http"}]}},
                     "application/json"))
        slices.append(("POST", f"/apis/discovery.k8s.io/v1/namespaces/{ns}/endpointslices",
                       {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
                        "metadata": {"name": f"svc-{s}-bench",
                                     "labels": {"kubernetes.io/service-name": f"svc-{s}"}},
                        "addressType": "IPv4", "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}],
                        "endpoints": [{"addresses": [pod_ip(i)], "conditions": {"ready": True},
                                       "nodeName": f"bench-node-{i % 100}"} for i in svc_of.get(s, [])]},
                       "application/json"))
    run_all(api, svcs)
    run_all(api, slices)
    pols = []
    for p in range(a.policies):
        ns = nss[p % a.namespaces]
        pols.append(("POST", f"/apis/security.istio.io/v1/namespaces/{ns}/authorizationpolicies",
                     {"apiVersion": "security.istio.io/v1", "kind": "AuthorizationPolicy",
                      "metadata": {"name": f"policy-{p}"},
                      "spec": {"selector": {"matchLabels": {"app": f"svc-{(p * 2) % a.services}"}},
                               "action": "DENY" if p % 10 == 0 else "ALLOW",
                               "rules": [{"from": [{"source": {"principals": [
                                   f"cluster.local/ns/{ns}/sa/sa-1",
                                   f"cluster.local/ns/{nss[(p + 1) % a.namespaces]}/sa/*"]}}],
                                   "to": [{"operation": {"ports": ["8080"]}}]}]}},
                     "application/json"))
    run_all(api, pols)


def churn(api, a):
    """RATE changes a second, paced; each step one watch event per agent."""
    ns = "bench-0"
    steps = []
    for k in range(a.rate * a.seconds // 4 + 1):
        name = f"churn-{k}"
        ip = f"172.21.{k // 250}.{k % 250 + 1}"
        steps += [("POST", f"/api/v1/namespaces/{ns}/pods", pod(ns, name, k, "churn", "sa-0"), "application/json"),
                  ("PATCH", f"/api/v1/namespaces/{ns}/pods/{name}/status", status(ip), MERGE),
                  ("PATCH", f"/api/v1/namespaces/{ns}/pods/{name}",
                   {"metadata": {"labels": {"version": "v2"}}}, MERGE),
                  ("DELETE", f"/api/v1/namespaces/{ns}/pods/{name}?gracePeriodSeconds=0", None,
                   "application/json")]
    steps = steps[:a.rate * a.seconds]
    start = time.monotonic()
    for n, r in enumerate(steps):
        delay = start + n / a.rate - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        api.call(*r)
    late = time.monotonic() - start - a.seconds
    if late > 1:
        sys.exit(f"kube_load: churn fell {late:.1f} s behind its rate")


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("command", choices=["load", "churn"])
    p.add_argument("--kube-dir", required=True)
    p.add_argument("--pods", type=int, default=10000)
    p.add_argument("--services", type=int, default=2000)
    p.add_argument("--policies", type=int, default=1000)
    p.add_argument("--namespaces", type=int, default=100)
    p.add_argument("--rate", type=int, default=20)
    p.add_argument("--seconds", type=int, default=30)
    a = p.parse_args()
    api = Api(a.kube_dir)
    (load if a.command == "load" else churn)(api, a)


if __name__ == "__main__":
    main()
