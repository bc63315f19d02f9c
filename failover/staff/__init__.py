"""Telling staff: the messages they read (``messages``), who they are (``directory``, plain data
built from the settings elsewhere) and the delivery of every message through the store's outbox
(``alerts``)."""

from failover.staff.alerts import DUPLICATE_MARKER, StaffAlerts, TargetResult, failure_message
from failover.staff.directory import StaffDirectory, Target

__all__ = ["DUPLICATE_MARKER", "StaffAlerts", "StaffDirectory", "Target", "TargetResult", "failure_message"]
