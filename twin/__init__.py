# SPDX-License-Identifier: AGPL-3.0-or-later
"""CityTwin: the Django project and the spatial core app."""
