"""``portalguard demo``: a whole booking-portal outage and recovery, played on 127.0.0.1 only.

- ``stage``: the local world (portal simulator, fake Google Ads, staff inbox, mail server) and the
  Settings pointing portalguard at it;
- ``loopback``: the guard that refuses any address off this machine;
- ``script``: the scenario's phases and the steps each must show;
- ``player``: plays the phases, waiting for each step within its bound;
- ``watch``: turns store events and what the fakes received into timeline entries;
- ``timeline``: the terminal output (and its JSON form);
- ``patient``: a simulated patient using /book;
- ``runner``: ties them to the real Service and prints the incident report.
"""

from failover.demo.runner import DemoOptions, DemoResult, run_demo

__all__ = ["DemoOptions", "DemoResult", "run_demo"]
