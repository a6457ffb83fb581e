# SPDX-License-Identifier: AGPL-3.0-or-later
"""Citizen field reports (phản ánh hiện trường): intake, routing, workflow, public results."""
