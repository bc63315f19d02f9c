"""Failover actions: one measure per kind, one module per kind.

``base`` is the contract (``Action``, ``ActionContext``, ``ActionError``, ``Incident``); each kind's
module holds its config model and its class; ``table`` lists the kinds (``ACTIONS``), and the
config union, the list of types and the labels people read all derive from it.
"""
