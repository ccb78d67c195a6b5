"""What queue_server, display_client and printer_agent all speak: one home for shared pieces.

The companions install and run without the server's package, so everything here imports only
the standard library (and PyYAML for the phrasebook): the language list, compact JSON, the
WebSocket close codes, the coded error base, and the spoken announcement of a call.
"""
