# SPDX-License-Identifier: AGPL-3.0-or-later
#
# CityTwin: two commands on a fresh Debian 12 machine (root, or a user with sudo):
#   make demo   install everything, start services, migrate, load a city, serve
#   make test   install everything, start services, run the test suite
# The logic lives in scripts/; this file only orders the steps.

SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV       := .venv
TWIN       := $(VENV)/bin/twin
# Every step after `services` talks to the URLs that services.sh wrote.
WITH_ENV   := set -a && . ./.run/env && set +a &&

DEMO_ADDR   ?= 127.0.0.1:8000
LOAD_ARGS   ?=
PYTEST_ARGS ?=

.PHONY: help deps services stop status destroy migrate load demo test

help:
	@echo "make demo      deps + services + migrate + load, then serve on http://$(DEMO_ADDR)/"
	@echo "make test      deps + services, then pytest (PYTEST_ARGS='...' to pass options)"
	@echo "make deps      Debian packages, .venv (pip install -e '.[dev]'), map_ui npm build"
	@echo "make services  start local PostgreSQL+PostGIS and Mosquitto; write .run/env"
	@echo "make status    show the local services"
	@echo "make stop      stop the local services"
	@echo "make destroy   stop them and delete their data (database, broker state)"
	@echo "make migrate   twin migrate"
	@echo "make load      twin load-city (LOAD_ARGS='...')"
	@echo "DATABASE_URL / MQTT_URL in the environment replace the local services."

deps:
	@bash scripts/deps.sh

services: deps
	@bash scripts/services.sh start

status:
	@bash scripts/services.sh status

stop:
	@bash scripts/services.sh stop

destroy:
	@bash scripts/services.sh destroy

migrate: deps services
	$(WITH_ENV) $(TWIN) migrate --noinput

load: migrate
	$(WITH_ENV) $(TWIN) load-city $(LOAD_ARGS)

demo: deps services migrate load
	$(WITH_ENV) bash scripts/admin-user.sh
	@echo "CityTwin: http://$(DEMO_ADDR)/  (admin: http://$(DEMO_ADDR)/admin/, user admin, password in .run/admin-password)"
	$(WITH_ENV) DEMO_ADDR=$(DEMO_ADDR) exec bash scripts/demo-live.sh

# CITYTWIN_REQUIRE_SERVICES=1 makes tests that need PostgreSQL or MQTT fail
# instead of skipping when the service is unreachable.
test: deps services
	$(WITH_ENV) CITYTWIN_REQUIRE_SERVICES=1 $(VENV)/bin/pytest $(PYTEST_ARGS)
