#!/usr/bin/env bash
# Checks the monitoring deployables under deploy/:
#   1. promtool check rules deploy/prometheus/alerts.yml
#   2. promtool test rules deploy/prometheus/alerts_test.yml
#   3. deploy/grafana/interlude.json is valid JSON, every panel uses the ${datasource} variable, there is a
#      `channel` variable, and every expression (panel targets, variable queries) reads only metrics that the code
#      under crates/ exports or that alerts.yml lists or records; the expressions also parse (promtool).
#   4. alerts.yml itself: every rule reads only listed or recorded metrics, every listed metric is exported by the
#      code (unless marked `prometheus`), every alert has `for:`, a severity and summary/description
#      annotations, and every alert has a firing case in alerts_test.yml.
# Installs promtool (Debian package `prometheus`) when missing and running as root. Exits non-zero on any failure.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
RULES=deploy/prometheus/alerts.yml
TESTS=deploy/prometheus/alerts_test.yml
DASHBOARD=deploy/grafana/interlude.json

apt_install() {
    # The package's postinst may start the prometheus daemon; stop only a daemon that the install itself started
    # (by pid), so that nothing of ours is left listening on :9090 and nobody else's process is touched.
    local before after pid
    before="$(pgrep -x prometheus || true)"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null 2>&1 || {
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
    }
    after="$(pgrep -x prometheus || true)"
    for pid in $after; do
        if ! grep -qx "$pid" <<<"$before"; then
            echo "Stopping the prometheus daemon (pid $pid) started by the package install."
            kill "$pid" 2>/dev/null || true
        fi
    done
}

if ! command -v promtool >/dev/null 2>&1; then
    if [ "$(id -u)" -ne 0 ]; then
        echo "promtool not found; install the Debian package 'prometheus' (or run this script as root)." >&2
        exit 1
    fi
    echo "Installing promtool (Debian package prometheus)..."
    apt_install prometheus
fi
if ! python3 -c 'import yaml' >/dev/null 2>&1; then
    if [ "$(id -u)" -ne 0 ]; then
        echo "python3 yaml module not found; install python3-yaml." >&2
        exit 1
    fi
    apt_install python3-yaml
fi

echo "== promtool $(promtool --version 2>&1 | head -n1 | awk '{print $3}')"
echo "== promtool check rules $RULES"
promtool check rules "$RULES"
echo "== promtool test rules $TESTS"
promtool test rules "$TESTS"

echo "== metrics, alerts and dashboard consistency"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
python3 - "$RULES" "$TESTS" "$DASHBOARD" "$WORK/dashboard_rules.yml" <<'PY'
import glob, json, re, sys
import yaml

rules_path, tests_path, dash_path, out_rules = sys.argv[1:5]
errors = []

# Metrics the code exports: the `metrics` facade's macros with a literal name, or with a constant declared as
# `pub const NAME: &str = "metric_name";` (each crate declares its metrics once, in its metrics module) and
# used as `counter!(NAME` or `counter!(path::to::NAME`. Histograms are exported with buckets (telemetry), so
# they come as _bucket, _sum and _count series.
code, histograms = set(), set()
texts = []
for path in glob.glob("crates/**/*.rs", recursive=True):
    with open(path, encoding="utf-8") as f:
        texts.append(f.read())
constants = {}
for text in texts:
    for ident, name in re.findall(r'\bconst\s+([A-Z][A-Z0-9_]*)\s*:\s*&(?:\'static\s+)?str\s*=\s*"([a-zA-Z_:][a-zA-Z0-9_:]*)"', text):
        constants.setdefault(ident, set()).add(name)
def export(kind, name):
    code.add(name)
    if kind == "histogram":
        histograms.add(name)
        code.update(name + s for s in ("_bucket", "_sum", "_count"))
for text in texts:
    for kind, name in re.findall(r'\b(counter|gauge|histogram)!\(\s*"([a-zA-Z_:][a-zA-Z0-9_:]*)"', text):
        export(kind, name)
    for kind, ident in re.findall(r'\b(counter|gauge|histogram)!\(\s*(?:[A-Za-z_][A-Za-z0-9_]*::)*([A-Z][A-Z0-9_]*)\b', text):
        for name in constants.get(ident, ()):
            export(kind, name)
if not code:
    errors.append("no metric found in crates/: is this the repository root?")

# alerts.yml: its metric list (comment lines `#   metric: NAME ...`), recording rules and alerts.
with open(rules_path, encoding="utf-8") as f:
    rules_text = f.read()
listed, external = set(), set()
for line in rules_text.splitlines():
    m = re.match(r"^#\s+metric:\s+([a-zA-Z_:][a-zA-Z0-9_:]*)\s*(.*)$", line)
    if m:
        listed.add(m.group(1))
        if m.group(2).split()[:1] == ["prometheus"]:
            external.add(m.group(1))
if not listed:
    errors.append(f"{rules_path}: no metric list (comment lines '#   metric: NAME')")
for name in sorted(listed - external):
    if name not in code:
        errors.append(f"{rules_path}: listed metric {name} is not exported by any code under crates/")
allowed_in_rules = set(listed)
for name in listed & histograms:
    allowed_in_rules.update(name + s for s in ("_bucket", "_sum", "_count"))

KEYWORDS = {"and", "or", "unless", "by", "without", "on", "ignoring", "group_left", "group_right", "offset",
            "bool", "inf", "nan", "atan2"}


def metric_names(expr):
    """Metric names an expression reads (a small PromQL scan: enough for selectors in these files)."""
    e = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    e = re.sub(r"'(?:[^'\\]|\\.)*'", "''", e)
    e = re.sub(r"\$\{[^}]*\}|\$\w+", "1", e)
    e = re.sub(r"\{[^{}]*\}", "", e)
    e = re.sub(r"\[[^\]]*\]", "", e)
    e = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", e)
    names = set()
    for m in re.finditer(r"(?<![\w.:])([a-zA-Z_:][a-zA-Z0-9_:]*)\s*(\()?", e):
        if m.group(2) or m.group(1).lower() in KEYWORDS:
            continue
        names.add(m.group(1))
    return names


groups = yaml.safe_load(rules_text)["groups"]
recorded, alerts = set(), []
for group in groups:
    for rule in group["rules"]:
        if "record" in rule:
            recorded.add(rule["record"])
for group in groups:
    for rule in group["rules"]:
        what = rule.get("alert") or rule.get("record")
        for name in sorted(metric_names(rule["expr"]) - allowed_in_rules - recorded):
            errors.append(f"{rules_path}: {what} reads {name}, which is not in the metric list")
        if "alert" not in rule:
            continue
        alerts.append(rule["alert"])
        if not rule.get("for"):
            errors.append(f"{rules_path}: {what} has no for:")
        if rule.get("labels", {}).get("severity") not in ("critical", "warning"):
            errors.append(f"{rules_path}: {what} has no severity label (critical or warning)")
        for key in ("summary", "description"):
            if not rule.get("annotations", {}).get(key, "").strip():
                errors.append(f"{rules_path}: {what} has no {key} annotation")

# Every alert has at least one case in the unit tests where it is expected to fire.
with open(tests_path, encoding="utf-8") as f:
    tests = yaml.safe_load(f)
fired = {t["alertname"] for test in tests.get("tests", []) for t in test.get("alert_rule_test", [])
         if t.get("exp_alerts")}
for name in alerts:
    if name not in fired:
        errors.append(f"{tests_path}: no test expects {name} to fire")

# The dashboard.
try:
    with open(dash_path, encoding="utf-8") as f:
        dash = json.load(f)
except (OSError, ValueError) as e:
    errors.append(f"{dash_path}: not valid JSON: {e}")
    dash = {}
allowed_in_dash = allowed_in_rules | recorded | code
variables = {v.get("name"): v for v in dash.get("templating", {}).get("list", [])}
if variables.get("datasource", {}).get("type") != "datasource":
    errors.append(f"{dash_path}: no datasource variable named 'datasource'")
if "channel" not in variables:
    errors.append(f"{dash_path}: no 'channel' variable")
exprs = []
for v in variables.values():
    query = v.get("query")
    query = query.get("query", "") if isinstance(query, dict) else query or ""
    if v.get("type") == "query":
        m = re.match(r"\s*label_values\(\s*([^,()]+?)\s*,\s*\w+\s*\)\s*$", query)
        if m:
            exprs.append((f"variable {v['name']}", m.group(1)))
        else:
            exprs.append((f"variable {v['name']}", query))


def walk(panels):
    for p in panels:
        yield p
        yield from walk(p.get("panels", []))


panels = list(walk(dash.get("panels", [])))
if dash and not any(p.get("targets") for p in panels):
    errors.append(f"{dash_path}: no panel has a target")
for p in panels:
    if p.get("type") == "row":
        continue
    title = p.get("title", f"panel {p.get('id')}")
    if (p.get("datasource") or {}).get("uid") != "${datasource}":
        errors.append(f"{dash_path}: panel '{title}' does not use the ${{datasource}} variable")
    for t in p.get("targets", []):
        if (t.get("datasource") or {}).get("uid", "${datasource}") != "${datasource}":
            errors.append(f"{dash_path}: panel '{title}' target {t.get('refId')} does not use ${{datasource}}")
        if not t.get("expr", "").strip():
            errors.append(f"{dash_path}: panel '{title}' target {t.get('refId')} has no expression")
            continue
        exprs.append((f"panel '{title}' target {t.get('refId')}", t["expr"]))
for where, expr in exprs:
    for name in sorted(metric_names(expr) - allowed_in_dash):
        errors.append(f"{dash_path}: {where} reads {name}, exported by no code and not in {rules_path}")

# Let promtool parse the dashboard's expressions, with Grafana's variables given plausible values.
def concrete(expr):
    for var, value in (("$__rate_interval", "5m"), ("$__interval", "1m"), ("$__range", "1h"),
                       ("${channel}", ".*"), ("$channel", ".*")):
        expr = expr.replace(var, value)
    return expr


with open(out_rules, "w", encoding="utf-8") as f:
    yaml.safe_dump({"groups": [{"name": "dashboard", "rules": [
        {"record": f"dashboard:expr_{i}", "expr": concrete(e)} for i, (_, e) in enumerate(exprs)]}]}, f)
with open(out_rules + ".index", "w", encoding="utf-8") as f:
    f.writelines(f"dashboard:expr_{i} is {where}\n" for i, (where, _) in enumerate(exprs))

checked = len([p for p in panels if p.get("type") != "row"])
print(f"{len(code)} metric series names exported by the code; {len(listed)} listed in {rules_path}; "
      f"{len(alerts)} alerts, {len(recorded)} recording rules; {checked} panels, {len(exprs)} expressions")
if errors:
    print("\n".join("ERROR: " + e for e in errors), file=sys.stderr)
    sys.exit(1)
PY
echo "== promtool parses the dashboard's expressions"
promtool check rules "$WORK/dashboard_rules.yml" >/dev/null || {
    promtool check rules "$WORK/dashboard_rules.yml" >&2 || true
    cat "$WORK/dashboard_rules.yml.index" >&2
    echo "ERROR: $DASHBOARD has an expression promtool cannot parse" >&2
    exit 1
}
echo "OK"

echo "check-deploy: all checks passed"
