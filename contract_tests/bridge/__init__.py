"""The kit against a real panel: catalogue pull, a judging proxy and recorder, dialect files
and a fidelity diff (issue 14).

Every part here talks HTTP to the *upstream* panel only through `requests`, judges with the
kit's own checks, and touches the fake only through its public face (`smmkit.mock_server`).
"""
