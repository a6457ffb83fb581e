# SPDX-License-Identifier: AGPL-3.0-or-later
"""daphne hands form bodies to Django without Twisted parsing them first (twin/daphne_requests.py)."""
from __future__ import annotations

from daphne import http_protocol
from daphne.server import Server
from twisted.internet.address import IPv4Address
from twisted.internet.testing import StringTransport

from twin import daphne_requests


def _request_of_a_new_connection():
    """What daphne builds for a request on a new connection (``Server.run`` without listening or a reactor)."""
    from twin.asgi import application     # loading the ASGI application installs the request class

    server = Server(application=application, endpoints=["tcp:port=0:interface=127.0.0.1"])
    server.connections = {}
    protocol = http_protocol.HTTPFactory(server).buildProtocol(IPv4Address("TCP", "127.0.0.1", 40000))
    protocol.makeConnection(StringTransport())      # Twisted's in-memory transport: no socket is opened
    return protocol.requestFactory(protocol._channel)


def test_daphne_requests_built_for_new_connections_skip_twisteds_form_parse():
    request = _request_of_a_new_connection()
    assert isinstance(request, http_protocol.WebRequest)
    assert request._parsePOSTFormSubmission is False


def test_installing_twice_changes_nothing_more():
    _request_of_a_new_connection()
    before = http_protocol.WebRequest
    assert daphne_requests.install() is True
    assert http_protocol.WebRequest is before
