# SPDX-License-Identifier: AGPL-3.0-or-later
"""Adapters turn raw transport messages into deliveries for the sink."""
