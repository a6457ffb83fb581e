# SPDX-License-Identifier: AGPL-3.0-or-later
"""Placeholder: the layer-kind registry is built by the OGC API work (issue 4)."""


def register_builtin() -> None:
    return None
