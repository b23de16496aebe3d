"""deploy/grafana/adapter-registry.json: a well-formed dashboard whose every PromQL query names
only metrics a real server exports (scraped from a server process on S3 with the metrics
port), and which covers what an operator watches."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import pytest

from tests.deploy.chart import ROOT
from tests.fixtures.metrics import exported_names, metered_server, scrape
from tests.fixtures.s3 import S3Server

DASHBOARD = ROOT / "deploy" / "grafana" / "adapter-registry.json"

# PromQL functions, aggregations and keywords the dashboard may use (anything else that looks
# like a name is taken for a metric name).
PROMQL_WORDS = frozenset(
    {
        "sum", "max", "min", "avg", "count", "topk", "bottomk", "rate", "irate", "increase",
        "histogram_quantile", "clamp_min", "by", "without", "on", "ignoring", "group_left",
        "group_right", "bool", "and", "or", "unless", "offset", "label_values",
    }
)  # fmt: skip
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"')
_MATCHERS = re.compile(r"\{[^{}]*\}")
_RANGE = re.compile(r"\[[^\]]*\]")
_GROUPING = re.compile(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")
_NAME = re.compile(r"(?<![\w$.])[A-Za-z_:][A-Za-z0-9_:]*")


def metric_names(expr: str) -> set[str]:
    """The metric names in a PromQL expression (label matchers, ranges, groupings, strings and
    template variables stripped)."""
    text = _STRING.sub('""', expr)
    text = _MATCHERS.sub("", text)
    text = _RANGE.sub("", text)
    text = _GROUPING.sub(r"\1", text)
    return {n for n in _NAME.findall(text) if n not in PROMQL_WORDS}


def queries(dashboard: dict[str, Any]) -> list[str]:
    found = [
        target["expr"]
        for panel in dashboard["panels"]
        for target in panel.get("targets", [])
        if "expr" in target
    ]
    for var in dashboard["templating"]["list"]:
        if var["type"] == "query":
            query = var["query"]
            found.append(query["query"] if isinstance(query, dict) else query)
    return found


@pytest.fixture(scope="module")
def dashboard() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return loaded


@pytest.fixture(scope="module")
def exported(
    database_url: str, tmp_path_factory: pytest.TempPathFactory, moto_s3_server: S3Server
) -> Iterator[set[str]]:
    with metered_server(database_url, tmp_path_factory.mktemp("grafana"), moto_s3_server) as m:
        yield exported_names(scrape(m.metrics_url))


def test_the_name_extraction_sees_what_it_must() -> None:
    expr = (
        'histogram_quantile(0.95, sum by (operation, le) (rate(a_bucket{job=~"$job", x="y{}"}'
        "[$__rate_interval]))) / on(instance) group_left b_total + c offset 5m"
    )
    assert metric_names(expr) == {"a_bucket", "b_total", "c"}
    assert metric_names('label_values(d_total{job=~"$job"}, route)') == {"d_total", "route"}


@pytest.mark.s3
def test_every_query_uses_exported_metrics_only(
    dashboard: dict[str, Any], exported: set[str]
) -> None:
    used: set[str] = set()
    for expr in queries(dashboard):
        names = metric_names(expr)
        if expr.startswith("label_values("):
            names -= {expr.rsplit(",", 1)[1].strip(" )")}  # the label asked for
        used |= names
    assert used, "no queries found"
    assert used <= exported, sorted(used - exported)


def test_the_dashboard_covers_what_an_operator_watches(dashboard: dict[str, Any]) -> None:
    exprs = "\n".join(queries(dashboard))
    for needed in (
        "rate(registry_http_requests_total",
        'status="5xx"',
        "histogram_quantile(0.5, sum by (route, le)",
        "histogram_quantile(0.95, sum by (route, le)",
        "histogram_quantile(0.99, sum by (route, le)",
        "sum by (deployment, arm) (rate(registry_resolves_total",
        "registry_controller_decisions_total",
        "registry_db_pool_checked_out",
        'registry_s3_calls_total{job=~"$job", outcome!~"ok|not_found"}',
    ):
        assert needed in exprs, needed


def test_the_dashboard_is_well_formed(dashboard: dict[str, Any]) -> None:
    assert dashboard["uid"] == "adapter-registry"
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    variables = {var["name"] for var in dashboard["templating"]["list"]}
    for panel in dashboard["panels"]:
        assert "gridPos" in panel
        if panel["type"] == "row":
            continue
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
        refs = [t["refId"] for t in panel["targets"]]
        assert len(refs) == len(set(refs)), panel["title"]
        for target in panel["targets"]:
            used = set(re.findall(r"\$(\w+)", target["expr"])) - {"__rate_interval"}
            assert used <= variables, (panel["title"], used - variables)
