#!/usr/bin/env python
# SPDX-License-Identifier: AGPL-3.0-or-later
"""Django's manage.py; ``twin`` (the installed console script) does the same."""
from twin.cli import main

if __name__ == "__main__":
    main()
