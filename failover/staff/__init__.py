"""Telling staff: the messages they read (``messages``), who they are (``directory``, plain data
built from the settings elsewhere), the delivery of every message through the store's outbox
(``alerts``) and the batching of booking requests into one message a minute (``bookings``)."""

from failover.staff.alerts import DUPLICATE_MARKER, StaffAlerts, TargetResult, failure_message
from failover.staff.directory import StaffDirectory, Target

__all__ = ["DUPLICATE_MARKER", "StaffAlerts", "StaffDirectory", "Target", "TargetResult", "failure_message"]
