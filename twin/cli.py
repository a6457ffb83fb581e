# SPDX-License-Identifier: AGPL-3.0-or-later
"""The ``twin`` command: Django's management commands under one name.

``twin load-city`` runs the ``load_city`` management command; dashes and
underscores are interchangeable so commands read naturally in a shell.
"""
from __future__ import annotations

import os
import sys


def main(argv: list[str] | None = None) -> None:
    argv = list(sys.argv if argv is None else argv)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "twin.settings")
    if len(argv) > 1 and not argv[1].startswith("-"):
        argv[1] = argv[1].replace("-", "_")
    from django.core.management import execute_from_command_line

    execute_from_command_line(argv)


if __name__ == "__main__":
    main()
