"""Execution providers: the catalogue of EPs aia knows, plugin EPs, and the planner.

``from aialliance_cli.providers import plan, Preferences, resolve_ep_name``.
"""

from __future__ import annotations

from aialliance_cli.providers.catalogue import (
    CATALOGUE,
    CPU_EP,
    EpSpec,
    Target,
    get_spec,
    install_hint,
    known_short_names,
    resolve_ep_name,
    short_name,
)
from aialliance_cli.providers.planner import (
    PassedOver,
    PlanChoice,
    Preferences,
    ProviderPlan,
    Unlock,
    plan,
    plan_for_machine,
)

__all__ = [
    "CATALOGUE",
    "CPU_EP",
    "EpSpec",
    "PassedOver",
    "PlanChoice",
    "Preferences",
    "ProviderPlan",
    "Target",
    "Unlock",
    "get_spec",
    "install_hint",
    "known_short_names",
    "plan",
    "plan_for_machine",
    "resolve_ep_name",
    "short_name",
]
