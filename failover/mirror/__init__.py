"""The appointment mirror: a continuous, encrypted copy of the portal's upcoming appointments.

- ``model``: what a source lists and what the store keeps (plain data, rank 0);
- ``dates``: the date and time texts of Japanese admin screens;
- ``reconcile``: one day's complete listing against what the mirror holds (pure);
- ``session``: the logged-in staff session the sources read through (the login probe's rules);
- ``sources/``: one module per source type (config model + fetch), and their table;
- ``config``: a portal's ``mirror:`` section;
- ``sync``: one sync of a portal, and the loop that runs it while the portal is up.
"""
