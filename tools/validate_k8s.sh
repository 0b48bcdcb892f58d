#!/usr/bin/env bash
# Checks the Kubernetes manifests in deploy/k8s/ offline, without a cluster:
#  1. each one against the Kubernetes API schema, strictly (unknown fields are
#     errors), with kubernetes-validate (pip; installed once into a virtual
#     environment under .build/, the only step that needs the package index);
#  2. that they fit together: Indexed Job with completions = parallelism =
#     WORLD_SIZE, its subdomain the headless Service that selects its pods,
#     MASTER_ADDR its pod of index 0, the ports, the ConfigMap mounted where
#     --config points;
#  3. that the ConfigMap's job.toml is configs/fashion-mlp.toml byte for byte.
#
#   tools/validate_k8s.sh
#
# Exit status: 0 all good; 1 a check failed (one line on stderr says which);
# 77 kubernetes-validate cannot be installed here (no python3 venv, no package index).
# K8S_VERSION (default 1.30.0): the Kubernetes version to check against;
# LOCKSTEP_K8S_VENV: another place for the virtual environment.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
k8s=$root/deploy/k8s
version=${K8S_VERSION:-1.30.0}
venv=${LOCKSTEP_K8S_VENV:-$root/.build/k8s-validate-venv}
fail() { echo "validate_k8s: $*" >&2; exit 1; }
cannot() { echo "validate_k8s: cannot install kubernetes-validate: $*" >&2; exit 77; }

command -v python3 >/dev/null || cannot "no python3"
mkdir -p "$(dirname "$venv")"
exec 9>"$venv.lock"
flock 9   # one installer at a time
if ! "$venv/bin/python" -c 'import kubernetes_validate, yaml' 2>/dev/null; then
  rm -rf "$venv"
  log=$(mktemp)
  trap 'rm -f "$log"' EXIT
  python3 -m venv "$venv" >"$log" 2>&1 || { rm -rf "$venv"; cannot "python3 -m venv failed ($(tail -n 1 "$log"))"; }
  "$venv/bin/pip" install --quiet 'kubernetes-validate==1.37.0' >"$log" 2>&1 \
    || { rm -rf "$venv"; cannot "pip install failed ($(grep -m 1 '^ERROR' "$log" || tail -n 1 "$log"))"; }
fi
flock -u 9

shopt -s nullglob
manifests=("$k8s"/*.yaml)
[ ${#manifests[@]} -gt 0 ] || fail "no manifests in $k8s"
for m in "${manifests[@]}"; do
  out=$("$venv/bin/kubernetes-validate" --strict --quiet -k "$version" "$m" 2>&1) \
    || fail "$(basename "$m") does not validate against Kubernetes $version: $(echo "$out" | grep -v '^ *$' | head -n 3 | tr '\n' ' ')"
done

"$venv/bin/python" - "$root" "${manifests[@]}" <<'EOF' || exit 1
import sys, yaml
root, files = sys.argv[1], sys.argv[2:]
docs = [d for f in files for d in yaml.safe_load_all(open(f, encoding="utf-8")) if d]
def one(kind):
    found = [d for d in docs if d.get("kind") == kind]
    if len(found) != 1: fail(f"expected one {kind} in deploy/k8s/, found {len(found)}")
    return found[0]
def fail(message):
    print(f"validate_k8s: {message}", file=sys.stderr); sys.exit(1)
job, service, config = one("Job"), one("Service"), one("ConfigMap")
spec, pod = job["spec"], job["spec"]["template"]["spec"]
main = next((c for c in pod["containers"] if c["command"][:2] == ["lockstep", "run"]), None) or fail("no container runs `lockstep run`")
env = {e["name"]: e.get("value") for e in main.get("env", [])}
cmd = main["command"]
def flag(name): return cmd[cmd.index(name) + 1] if name in cmd else None
name = job["metadata"]["name"]
checks = [
    (spec.get("completionMode") == "Indexed", "the Job is not completionMode: Indexed"),
    (spec.get("completions") == spec.get("parallelism") == int(env.get("WORLD_SIZE", -1)), "completions, parallelism and WORLD_SIZE differ"),
    (spec.get("backoffLimit") == 0 and pod.get("restartPolicy") == "Never", "a failed rank must fail the job (backoffLimit: 0, restartPolicy: Never)"),
    (service["spec"].get("clusterIP") == "None", "the Service is not headless (clusterIP: None)"),
    (pod.get("subdomain") == service["metadata"]["name"], "the Job's subdomain is not the Service's name"),
    (service["spec"].get("selector") == {"job-name": name}, f"the Service does not select job-name: {name}"),
    (env.get("MASTER_ADDR") == f"{name}-0.{pod.get('subdomain')}", f"MASTER_ADDR is not {name}-0.{pod.get('subdomain')}"),
]
ports = {p["port"] for p in service["spec"].get("ports", [])}
checks.append((int(env.get("MASTER_PORT", 29500)) in ports, "the Service does not expose MASTER_PORT"))
if flag("--bind"):
    checks.append((int(flag("--bind").rsplit(":", 1)[1]) in ports, "the Service does not expose the --bind port"))
mounts = {m["name"]: m["mountPath"] for m in main.get("volumeMounts", [])}
volume = next((v for v in pod.get("volumes", []) if v.get("configMap", {}).get("name") == config["metadata"]["name"]), None)
checks.append((volume is not None and volume["name"] in mounts
               and flag("--config") == mounts[volume["name"]].rstrip("/") + "/job.toml", "--config is not the mounted ConfigMap's job.toml"))
# Keys: --key and --allow in the keys volume the init container fills from the Secret.
secret = next((v for v in pod.get("volumes", []) if "secret" in v), None)
init = next((c for c in pod.get("initContainers", []) if any(m["name"] == (secret or {}).get("name") for m in c.get("volumeMounts", []))), None)
keys = (flag("--allow") or "").rstrip("/")
checks.append((secret is not None and init is not None, "no init container copies the keys Secret"))
checks.append((keys in mounts.values() and flag("--key") == keys + "/job.key", "--key is not job.key in the mounted --allow directory"))
checks.append((init is not None and keys in " ".join(init["command"]), "the init container does not copy the keys into --allow's directory"))
for ok, message in checks:
    if not ok: fail(message)
with open(f"{root}/configs/fashion-mlp.toml", encoding="utf-8", newline="") as f:
    if config["data"].get("job.toml") != f.read():
        fail("the ConfigMap's job.toml differs from configs/fashion-mlp.toml (copy it into deploy/k8s/configmap.yaml)")
EOF
echo "validate_k8s: ${#manifests[@]} manifests valid for Kubernetes $version; ConfigMap job.toml = configs/fashion-mlp.toml"
