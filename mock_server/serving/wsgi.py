"""WSGI entry point for servers that import the app by name (granian workers).

This is an edge: the configuration arrives as JSON in SMMKIT_SERVE_CONFIG, written by
`server.serve` in the parent process, and becomes a Config here.
"""

from __future__ import annotations

import json
import os

from smmkit.mock_server.core.config import Config
from smmkit.mock_server.serving.lifeline import die_with_parent
from smmkit.mock_server.web.app import create_app

die_with_parent()  # a granian worker ends with its master, however the master ends
app = create_app(config=Config(**json.loads(os.environ.get("SMMKIT_SERVE_CONFIG", "{}"))))
