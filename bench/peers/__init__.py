# SPDX-License-Identifier: AGPL-3.0-or-later
"""Peer servers of the layers benchmark (tipg, pygeoapi) and ours, one worker each."""
