"""The availability report: how long each portal was up, down or unobserved over a period, built
from the audit log (``failover/report/history.py``), computed by a pure function
(``availability.py``) and written as Markdown, CSV or JSON (``render.py``)."""
