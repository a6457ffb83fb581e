# SPDX-License-Identifier: AGPL-3.0-or-later
"""Event snapshots, served to users who may read events (the files are already blurred)."""
from __future__ import annotations

import re

from django.http import FileResponse, HttpRequest

from cameras.snapshot import snapshot_dir
from twin.auth import json_api, requires
from twin.errors import InvalidInput, NotFound
from twin.roles import Capability

# <camera>/<yyyymmdd>/<object id>.jpg, exactly as cameras.snapshot writes them: no "..", no absolute paths.
_PATH = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}/\d{8}/[A-Za-z0-9][A-Za-z0-9._-]{0,150}\.jpg$")


@json_api
@requires(Capability.READ_EVENTS)
def snapshot(request: HttpRequest, path: str) -> FileResponse:
    if not _PATH.match(path) or ".." in path:
        raise InvalidInput("not a snapshot path")
    file = snapshot_dir() / path
    if not file.is_file():
        raise NotFound("no such snapshot")
    response = FileResponse(file.open("rb"), content_type="image/jpeg")
    response["Cache-Control"] = "private, max-age=86400"
    return response
