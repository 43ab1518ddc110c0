#!/usr/bin/env python3
"""Control-plane benchmark for a running `weft server` (127.0.0.1 only).

Measures, against the real HTTPS API:
  1. watch propagation: a write (scale) until the watch stream delivers the change;
  2. apply -> ready: a 10-replica weft-demo deployment until every replica is ready;
  3. self-healing: kill -9 of a replica process until it is ready again (one kill per replica).
Prints a table of p50/p99/max; bounded in count and time.
"""
import argparse, json, os, signal, socket, ssl, statistics, sys, threading, time, http.client
from urllib.parse import urlparse


def load_config(path):
    text = open(path).read()
    server = token = None
    ca_lines, in_ca = [], False
    for line in text.splitlines():
        if in_ca:
            if line.startswith("  ") or line.strip() == "":
                ca_lines.append(line.strip())
                continue
            in_ca = False
        if line.startswith("server:"):
            server = line.split(":", 1)[1].strip().strip('"')
        elif line.startswith("token:"):
            token = line.split(":", 1)[1].strip().strip('"')
        elif line.startswith("certificateAuthority:"):
            in_ca = True
    return server, token, "\n".join(l for l in ca_lines if l) + "\n"


class API:
    def __init__(self, config):
        self.server, self.token, ca = load_config(config)
        url = urlparse(self.server)
        self.host, self.port = url.hostname, url.port
        self.context = ssl.create_default_context(cadata=ca)

    def connection(self, timeout=30):
        return http.client.HTTPSConnection(self.host, self.port, context=self.context, timeout=timeout)

    def call(self, method, path, body=None):
        conn = self.connection()
        headers = {"Authorization": f"Bearer {self.token}", "Content-Type": "application/json"}
        conn.request(method, path, body=json.dumps(body) if body is not None else None, headers=headers)
        response = conn.getresponse()
        data = response.read()
        conn.close()
        if response.status >= 300:
            raise RuntimeError(f"{method} {path}: {response.status} {data[:300]!r}")
        return json.loads(data) if data else None

    def watch(self, path, on_event, stop):
        """Streams NDJSON events to on_event(event, arrival_time) until stop is set."""
        conn = self.connection(timeout=60)
        conn.request("GET", path, headers={"Authorization": f"Bearer {self.token}"})
        response = conn.getresponse()
        buffer = b""
        while not stop.is_set():
            chunk = response.read1(65536)
            if not chunk:
                break
            now = time.perf_counter()
            buffer += chunk
            while b"\n" in buffer:
                line, buffer = buffer.split(b"\n", 1)
                if line.strip():
                    on_event(json.loads(line), now)
        conn.close()


def percentile(values, p):
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, int(round(p / 100 * (len(ordered) - 1)))))
    return ordered[index]


def summary(name, seconds):
    ms = [s * 1000 for s in seconds]
    return f"| {name} | {len(ms)} | {percentile(ms, 50):.1f} | {percentile(ms, 99):.1f} | {max(ms):.1f} |"


def deployment(name, replicas):
    return {"apiVersion": "weft/v1", "kind": "Deployment", "metadata": {"name": name},
            "spec": {"replicas": replicas,
                     "template": {"metadata": {"labels": {"app": name}},
                                  "spec": {"command": ["weft-demo"], "ports": [{"name": "http"}],
                                           "readinessProbe": {"httpGet": {"path": "/healthz", "port": "http"}, "periodSeconds": 1},
                                           "terminationGracePeriodSeconds": 2}}}}


def service_only(port=1):
    return {"apiVersion": "weft/v1", "kind": "Service", "metadata": {"name": "bench-watch"},
            "spec": {"selector": {"app": "bench-watch"}, "ports": [{"port": port}]}}


def bench_watch_services(api, writes):
    ns = "/api/v1/namespaces/default"
    version = api.call("GET", f"{ns}/services")["resourceVersion"]
    seen = {}
    cond = threading.Condition()
    stop = threading.Event()

    def on_event(event, now):
        obj = event.get("object", {})
        if event.get("type") in ("ADDED", "MODIFIED") and obj.get("metadata", {}).get("name") == "bench-watch":
            with cond:
                seen.setdefault(obj["spec"]["ports"][0]["port"], now)
                cond.notify_all()

    thread = threading.Thread(target=api.watch, args=(f"{ns}/services?watch=true&resourceVersion={version}", on_event, stop), daemon=True)
    thread.start()
    time.sleep(0.2)
    latencies = []
    for i in range(writes):
        port = 1000 + i
        start = time.perf_counter()
        api.call("POST", "/api/v1/apply", {"items": [service_only(port)]})
        with cond:
            if not cond.wait_for(lambda: port in seen, timeout=10):
                raise RuntimeError(f"no watch event for write {i}")
        latencies.append(seen[port] - start)
    stop.set()
    api.call("DELETE", f"{ns}/services/bench-watch")
    return latencies


def replicas(api, name):
    items = api.call("GET", "/api/v1/namespaces/default/replicas")["items"]
    return [r for r in items if r["spec"]["deployment"] == name]


def wait(predicate, timeout, what):
    deadline = time.perf_counter() + timeout
    while time.perf_counter() < deadline:
        if predicate():
            return time.perf_counter()
        time.sleep(0.02)
    raise RuntimeError(f"timed out: {what}")


def bench_apply_ready(api, rounds, count):
    results = []
    for i in range(rounds):
        name = f"bench-ready-{i}"
        start = time.perf_counter()
        api.call("POST", "/api/v1/apply", {"items": [deployment(name, count)]})
        end = wait(lambda: sum(1 for r in replicas(api, name) if (r.get("status") or {}).get("ready")) == count, 60, "replicas ready")
        results.append(end - start)
        api.call("DELETE", f"/api/v1/namespaces/default/deployments/{name}")
        wait(lambda: not replicas(api, name), 60, "replicas gone")
    return results


def bench_heal(api, trials):
    """Kills each of `trials` replicas once (a first crash: restarted at once) and times its return."""
    name = "bench-heal"
    api.call("POST", "/api/v1/apply", {"items": [deployment(name, trials)]})
    wait(lambda: sum(1 for r in replicas(api, name) if (r.get("status") or {}).get("ready")) == trials, 60, "ready")
    results = []
    for replica in replicas(api, name):
        restarts = replica["status"]["restarts"]
        os.kill(replica["status"]["pid"], signal.SIGKILL)
        start = time.perf_counter()

        def healed():
            current = [r for r in replicas(api, name) if r["metadata"]["name"] == replica["metadata"]["name"]]
            return bool(current) and current[0]["status"]["restarts"] > restarts and current[0]["status"]["ready"]
        results.append(wait(healed, 90, "replica healed") - start)
    api.call("DELETE", f"/api/v1/namespaces/default/deployments/{name}")
    wait(lambda: not replicas(api, name), 60, "replicas gone")
    return results


def bench_endpoint_removal(api, trials):
    """kill -9 of each of `trials` replicas once, until the service's Endpoints (which every node proxy
    watches) no longer list it."""
    name = "bench-endpoints"
    ns = "/api/v1/namespaces/default"
    service = {"apiVersion": "weft/v1", "kind": "Service", "metadata": {"name": name},
               "spec": {"selector": {"app": name}, "ports": [{"name": "http", "port": 80, "targetPort": "http"}]}}
    api.call("POST", "/api/v1/apply", {"items": [deployment(name, trials), service]})
    wait(lambda: len((api.call("GET", f"{ns}/endpoints/{name}") if _exists(api, f"{ns}/endpoints/{name}") else {}).get("endpoints", [])) == trials,
         90, "all endpoints ready")
    version = api.call("GET", f"{ns}/endpoints")["resourceVersion"]
    removed = {}
    cond = threading.Condition()
    stop = threading.Event()

    def on_event(event, now):
        obj = event.get("object", {})
        if event.get("type") == "MODIFIED" and obj.get("metadata", {}).get("name") == name:
            present = {e["replica"] for e in obj.get("endpoints", [])}
            with cond:
                for replica in list(watching):
                    if replica not in present and replica not in removed:
                        removed[replica] = now
                cond.notify_all()

    watching = set()
    thread = threading.Thread(target=api.watch, args=(f"{ns}/endpoints?watch=true&resourceVersion={version}", on_event, stop), daemon=True)
    thread.start()
    time.sleep(0.2)
    results = []
    for replica in replicas(api, name):
        replica_name = replica["metadata"]["name"]
        wait(lambda: replica_name in {e["replica"] for e in api.call("GET", f"{ns}/endpoints/{name}")["endpoints"]}, 30, "endpoint back")
        with cond:
            watching.add(replica_name)
        start = time.perf_counter()
        os.kill(replica["status"]["pid"], signal.SIGKILL)
        with cond:
            if not cond.wait_for(lambda: replica_name in removed, timeout=10):
                raise RuntimeError(f"{replica_name} never left the endpoints")
        results.append(removed[replica_name] - start)
    stop.set()
    api.call("DELETE", f"{ns}/services/{name}")
    api.call("DELETE", f"{ns}/deployments/{name}")
    wait(lambda: not replicas(api, name), 60, "replicas gone")
    return results


def dns_rcode_and_answers(port, name, timeout=1.0):
    """One A query over UDP to 127.0.0.1:port: (rcode, answer count)."""
    query_id = int.from_bytes(os.urandom(2), "big")
    packet = query_id.to_bytes(2, "big") + b"\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00"
    for label in name.split("."):
        packet += bytes([len(label)]) + label.encode()
    packet += b"\x00\x00\x01\x00\x01"
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(timeout)
        sock.sendto(packet, ("127.0.0.1", port))
        while True:
            answer = sock.recv(4096)
            if answer[:2] == packet[:2]:
                return answer[3] & 0x0F, int.from_bytes(answer[6:8], "big")


def bench_dns_freshness(api, port, trials):
    """apply of a new service → its name resolves; delete → NXDOMAIN (polled every 2 ms)."""
    ns = "/api/v1/namespaces/default"
    appear, vanish = [], []
    for i in range(trials):
        name = f"bench-dns-{i}"
        fqdn = f"{name}.default.svc.weft.internal"
        body = {"apiVersion": "weft/v1", "kind": "Service", "metadata": {"name": name},
                "spec": {"selector": {"app": name}, "ports": [{"port": 80}]}}
        start = time.perf_counter()
        api.call("POST", "/api/v1/apply", {"items": [body]})
        while dns_rcode_and_answers(port, fqdn)[1] == 0:
            if time.perf_counter() - start > 10:
                raise RuntimeError(f"{fqdn} did not resolve within 10 s")
            time.sleep(0.002)
        appear.append(time.perf_counter() - start)
        start = time.perf_counter()
        api.call("DELETE", f"{ns}/services/{name}")
        while dns_rcode_and_answers(port, fqdn)[0] != 3:
            if time.perf_counter() - start > 10:
                raise RuntimeError(f"{fqdn} still resolves 10 s after its delete")
            time.sleep(0.002)
        vanish.append(time.perf_counter() - start)
    return appear, vanish


def _exists(api, path):
    try:
        api.call("GET", path)
        return True
    except RuntimeError:
        return False


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", required=True)
    parser.add_argument("--writes", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--heal-trials", type=int, default=10)
    parser.add_argument("--removal-trials", type=int, default=20)
    parser.add_argument("--dns-port", type=int, help="the server's DNS port on 127.0.0.1 (its `dns` line)")
    parser.add_argument("--dns-trials", type=int, default=50)
    args = parser.parse_args()
    api = API(args.config)
    print("| measurement | n | p50 ms | p99 ms | max ms |")
    print("|---|---|---|---|---|")
    print(summary("write → watch event (apply of a service)", bench_watch_services(api, args.writes)), flush=True)
    print(summary("apply → 10 replicas ready (weft-demo, readiness period 1 s)", bench_apply_ready(api, args.rounds, 10)), flush=True)
    print(summary("kill -9 → replica ready again (first crash)", bench_heal(api, args.heal_trials)), flush=True)
    print(summary("kill -9 → endpoint removed (Endpoints watch event)", bench_endpoint_removal(api, args.removal_trials)), flush=True)
    if args.dns_port:
        appear, vanish = bench_dns_freshness(api, args.dns_port, args.dns_trials)
        print(summary("apply of a service → its name resolves (DNS over UDP)", appear), flush=True)
        print(summary("delete of a service → NXDOMAIN", vanish), flush=True)


if __name__ == "__main__":
    main()
