"""Prometheus metrics, served at ``/metrics``."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

REGISTRY = CollectorRegistry(auto_describe=True)

VMS_BY_STATE = Gauge(
    "corral_vms", "VMs in the inventory by runtime state", ["state"], registry=REGISTRY
)
HOSTS_CONNECTED = Gauge(
    "corral_hosts_connected", "Hosts with a live libvirt connection", registry=REGISTRY
)
CERT_EXPIRY = Gauge(
    "corral_cert_expiry_seconds",
    "Seconds until a certificate Corral issued expires (host _manager: Corral's own and the CAs)",
    ["host", "purpose"],
    registry=REGISTRY,
)
API_LATENCY = Histogram(
    "corral_api_request_seconds",
    "API request latency",
    ["method", "route", "status"],
    registry=REGISTRY,
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
LIBVIRT_ERRORS = Counter(
    "corral_libvirt_errors", "Errors reported by libvirt, by host", ["host"], registry=REGISTRY
)
TASKS_FINISHED = Counter(
    "corral_tasks_finished",
    "Finished tasks by kind and final state",
    ["kind", "state"],
    registry=REGISTRY,
)
DATABASE_UNAVAILABLE = Counter(
    "corral_database_unavailable",
    "Transactions refused because the database was away (unreachable, locked, read-only)",
    registry=REGISTRY,
)
