"""No service imports another service's package: services talk over gRPC and the queue,
and share code only through the shared packages. Service packages are found on disk, so
a new service is covered without editing this file."""

from __future__ import annotations

from pathlib import Path

import grimp
import pytest

SERVICES = Path(__file__).resolve().parents[1] / "services"
SHARED = frozenset({"runtime", "provider_access", "generation_queue", "vocabulary"})


def _packages(*, shared: bool) -> list[str]:
    return sorted(p.name for p in SERVICES.iterdir() if (p / "__init__.py").is_file() and (p.name in SHARED) == shared)


@pytest.fixture(scope="module")
def graph() -> grimp.ImportGraph:
    return grimp.build_graph("services", "synthtasks_cli")


def _imports(graph: grimp.ImportGraph, importer: str, imported: str) -> list[str]:
    found = graph.find_matching_direct_imports(import_expression=f"{importer} -> {imported}")
    found += graph.find_matching_direct_imports(import_expression=f"{importer}.** -> {imported}.**")
    return sorted(f"{i['importer']} -> {i['imported']}" for i in found)


def test_the_graph_sees_the_services_and_their_shared_imports(graph):
    # Positive control: the scan finds every service and the imports it does have.
    services = _packages(shared=False)
    assert {"gateway", "provider_registry", "task_store", "generator_worker"} <= set(services)
    for service in services:
        assert _imports(graph, f"services.{service}", "services.runtime"), service


def test_no_service_imports_another_services_package(graph):
    services = _packages(shared=False)
    crossings = {
        (importer, imported): _imports(graph, f"services.{importer}", f"services.{imported}")
        for importer in services
        for imported in services
        if importer != imported
    }
    assert {pair: lines for pair, lines in crossings.items() if lines} == {}


def test_shared_packages_and_the_cli_import_no_service_package(graph):
    services = _packages(shared=False)
    importers = [f"services.{name}" for name in _packages(shared=True)] + ["synthtasks_cli"]
    found = {
        importer: lines
        for importer in importers
        for service in services
        if (lines := _imports(graph, importer, f"services.{service}"))
    }
    assert found == {}
