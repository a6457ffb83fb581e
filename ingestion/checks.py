# SPDX-License-Identifier: AGPL-3.0-or-later
"""System checks for the ingestion configuration: say what is wrong before a worker starts.

Warnings, not errors: a broken broker setting must not stop ``migrate`` or
``runserver``; ``twin run-ingest`` itself refuses to start on the same problems.
No network access here (checks run before every command).
"""
from __future__ import annotations

from django.core import checks
from pydantic import ValidationError


@checks.register()
def check_ingest_config(app_configs=None, **kwargs):
    from ingestion.config import load_config

    try:
        cfg = load_config()
        cfg.broker.endpoint()
    except (ValidationError, ValueError) as exc:
        return [checks.Warning(f"the ingestion configuration is invalid: {str(exc).splitlines()[0]}",
                               hint="Check MQTT_URL (mqtt://host:port) and the INGEST_CONFIG file "
                                    "(docs/ingestion.md, Configuration); secrets are ${ENV_NAME}.",
                               id="ingestion.W001")]
    except OSError as exc:
        return [checks.Warning(f"cannot read the ingestion configuration: {exc}",
                               hint="INGEST_CONFIG names a TOML file that must exist.", id="ingestion.W002")]
    return []
