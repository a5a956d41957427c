"""Scenario files: YAML -> validated, typed steps.  No simulation here.

:func:`load_scenario` reads and checks a file (contract: docs/scenario-format.md);
:func:`scenario_schema` is the JSON Schema of the same format.
"""

from ksmrepro.scenario.loader import load_scenario, load_scenario_text
from ksmrepro.scenario.schema import scenario_schema
from ksmrepro.scenario.steps import Scenario

__all__ = ["Scenario", "load_scenario", "load_scenario_text", "scenario_schema"]
