# SPDX-License-Identifier: AGPL-3.0-or-later
"""The device simulator behind ``twin simulate`` (docs/simulator.md).

``config`` (simulator.toml) → ``fleet`` (devices registered as features,
Django) → ``plan`` → ``publisher`` (paced paho clients in one or more
processes) → ``streams`` (what each device says, per ``ingestion/schemas.py``)
with ``pm25`` (the real Hà Nội series, cleaned). ``streams``, ``pm25`` and
``publisher`` import no Django, so publisher processes start quickly.
"""
