"""Telling staff: the messages they read (``messages``) and their delivery to every target
(``alerts``)."""

from failover.staff.alerts import Delivery, StaffAlerts, Target

__all__ = ["Delivery", "StaffAlerts", "Target"]
